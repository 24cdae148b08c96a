"""The embedded default store: SQLite + FAISS + BM25 files in one folder."""

from ragline.store.local.store import LocalStore

__all__ = ["LocalStore"]
