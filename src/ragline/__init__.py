"""ragline: offline retrieval-augmented generation."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

# Before torch or faiss load OpenMP: spinning threads make a busy 2-core machine crawl
# (a single query took ~1 s with 2 spinning threads instead of ~25 ms; bench/search.py).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from ragline.errors import RaglineError  # noqa: E402

if TYPE_CHECKING:
    from ragline.index import Index
    from ragline.ingest.pipeline import IngestReport
    from ragline.types import Hit, SearchResult

__all__ = ["Hit", "Index", "IngestReport", "RaglineError", "SearchResult"]
__version__ = "0.1.0"

# imported on first use, so `ragline --help` and `import ragline.cli` stay light (PEP 562)
_LAZY = {"Index": "ragline.index", "IngestReport": "ragline.ingest.pipeline",
         "Hit": "ragline.types", "SearchResult": "ragline.types"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ragline' has no attribute {name!r}")
