"""Storage: the SQLite catalog and the vector stores behind the VectorStore protocol."""

from ragline.store.base import VectorStore, check_vectors
from ragline.store.catalog import Catalog
from ragline.store.faiss_store import FaissStore

__all__ = ["Catalog", "FaissStore", "VectorStore", "check_vectors"]
