"""ragline: offline retrieval-augmented generation."""

from ragline.errors import RaglineError
from ragline.index import Index
from ragline.ingest.pipeline import IngestReport
from ragline.types import Hit, SearchResult

__all__ = ["Hit", "Index", "IngestReport", "RaglineError", "SearchResult"]
__version__ = "0.1.0"
