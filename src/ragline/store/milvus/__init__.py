"""The Milvus store: catalog and BM25 in the index folder, vectors in a Milvus collection."""

from ragline.store.milvus.store import MilvusStore

__all__ = ["MilvusStore"]
