"""The PostgreSQL + pgvector store: documents, chunks, vectors and BM25 postings in one
database (`postgresql://...`), with the local store's behaviour."""

from ragline.store.postgres.store import PostgresStore

__all__ = ["PostgresStore"]
