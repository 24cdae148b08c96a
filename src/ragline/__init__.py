"""ragline: offline retrieval-augmented generation."""

import os

# Before torch or faiss load OpenMP: spinning threads make a busy 2-core machine crawl
# (a single query took ~1 s with 2 spinning threads instead of ~25 ms; bench/search.py).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from ragline.errors import RaglineError  # noqa: E402
from ragline.index import Index  # noqa: E402
from ragline.ingest.pipeline import IngestReport  # noqa: E402
from ragline.types import Hit, SearchResult  # noqa: E402

__all__ = ["Hit", "Index", "IngestReport", "RaglineError", "SearchResult"]
__version__ = "0.1.0"
