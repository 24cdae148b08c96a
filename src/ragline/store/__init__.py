"""Storage: one protocol for a whole index (documents, chunks, vectors, postings), its backends
(`local/`, `postgres/`) and the metadata filter grammar every backend applies."""

from ragline.store.base import (
    ChunkRecord,
    DocumentRecord,
    IndexStore,
    StoreReader,
    StoreWriter,
)
from ragline.store.factory import open_store

__all__ = ["ChunkRecord", "DocumentRecord", "IndexStore", "StoreReader", "StoreWriter",
           "open_store"]
