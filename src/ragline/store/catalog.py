"""SQLite catalog of documents and chunks; the source of truth for what the index holds.

One writer at a time holds an open transaction; `commit` records the vector generation in the
same transaction as the rows it describes, so catalog and vectors always agree.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    hash TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime REAL NOT NULL,
    ingested_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY,
    chunk_id TEXT NOT NULL UNIQUE,
    document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    source TEXT NOT NULL,
    ordinal INTEGER NOT NULL,
    text TEXT NOT NULL,
    text_hash TEXT NOT NULL,
    page INTEGER,
    heading TEXT,
    title TEXT,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_document ON chunks(document_id);
CREATE INDEX IF NOT EXISTS chunks_text_hash ON chunks(text_hash);
"""

CHUNK_COLUMNS = ("id", "chunk_id", "document_id", "source", "ordinal", "text", "text_hash",
                 "page", "heading", "title", "start", "end")


@dataclass(frozen=True)
class DocumentRow:
    id: int
    path: str
    hash: str
    size: int
    mtime: float


class Catalog:
    """Thin typed wrapper over the SQLite file `catalog.sqlite`."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.conn = sqlite3.connect(self.path, isolation_level=None, timeout=30.0,
                                    check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self.in_transaction = False

    def create_schema(self) -> None:
        self.conn.executescript(_SCHEMA)

    def close(self) -> None:
        if self.in_transaction:
            self.rollback()
        self.conn.close()

    # transactions -------------------------------------------------------------------------
    def begin(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")
        self.in_transaction = True

    def commit(self) -> None:
        self.conn.execute("COMMIT")
        self.in_transaction = False

    def rollback(self) -> None:
        self.conn.execute("ROLLBACK")
        self.in_transaction = False

    # meta ---------------------------------------------------------------------------------
    def meta(self) -> dict[str, str]:
        try:
            return dict(self.conn.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.OperationalError:
            return {}

    def set_meta(self, **values: Any) -> None:
        self.conn.executemany(
            "INSERT INTO meta(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [(k, str(v)) for k, v in values.items()],
        )

    # documents ----------------------------------------------------------------------------
    def document(self, path: str) -> DocumentRow | None:
        row = self.conn.execute(
            "SELECT id, path, hash, size, mtime FROM documents WHERE path = ?", (path,)
        ).fetchone()
        return DocumentRow(*row) if row else None

    def documents(self) -> list[DocumentRow]:
        rows = self.conn.execute("SELECT id, path, hash, size, mtime FROM documents ORDER BY path")
        return [DocumentRow(*r) for r in rows]

    def upsert_document(self, path: str, hash_: str, size: int, mtime: float, now: float) -> int:
        row = self.conn.execute(
            "INSERT INTO documents(path, hash, size, mtime, ingested_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(path) DO UPDATE SET hash = excluded.hash, size = excluded.size, "
            "mtime = excluded.mtime, ingested_at = excluded.ingested_at RETURNING id",
            (path, hash_, size, mtime, now),
        ).fetchone()
        return int(row[0])

    def delete_document(self, document_id: int) -> list[int]:
        """Delete a document and its chunks; returns the vector ids to remove."""
        ids = self.chunk_ids_of(document_id)
        self.conn.execute("DELETE FROM chunks WHERE document_id = ?", (document_id,))
        self.conn.execute("DELETE FROM documents WHERE id = ?", (document_id,))
        return ids

    # chunks -------------------------------------------------------------------------------
    def chunk_ids_of(self, document_id: int) -> list[int]:
        rows = self.conn.execute("SELECT id FROM chunks WHERE document_id = ?", (document_id,))
        return [r[0] for r in rows]

    def delete_chunks_of(self, document_id: int) -> list[int]:
        ids = self.chunk_ids_of(document_id)
        self.conn.execute("DELETE FROM chunks WHERE document_id = ?", (document_id,))
        return ids

    def ids_by_text_hash(self, hashes: Iterable[str]) -> dict[str, int]:
        """Find an existing vector for each embed-text hash, so it is not embedded again."""
        found: dict[str, int] = {}
        wanted = list(dict.fromkeys(hashes))
        for i in range(0, len(wanted), 500):
            part = wanted[i : i + 500]
            marks = ",".join("?" * len(part))
            for h, cid in self.conn.execute(
                f"SELECT text_hash, MIN(id) FROM chunks WHERE text_hash IN ({marks}) "
                "GROUP BY text_hash", part,
            ):
                found[h] = int(cid)
        return found

    def insert_chunks(self, rows: Sequence[tuple[Any, ...]]) -> None:
        marks = ",".join("?" * len(CHUNK_COLUMNS))
        cols = ",".join(f'"{c}"' for c in CHUNK_COLUMNS)
        self.conn.executemany(f"INSERT INTO chunks({cols}) VALUES ({marks})", rows)

    def chunks_by_ids(self, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        out: dict[int, dict[str, Any]] = {}
        cols = ",".join(f'"{c}"' for c in CHUNK_COLUMNS)
        for i in range(0, len(ids), 500):
            part = [int(x) for x in ids[i : i + 500]]
            marks = ",".join("?" * len(part))
            for row in self.conn.execute(
                f"SELECT {cols} FROM chunks WHERE id IN ({marks})", part
            ):
                out[row[0]] = dict(zip(CHUNK_COLUMNS, row, strict=True))
        return out

    def all_chunk_ids(self) -> list[int]:
        return [r[0] for r in self.conn.execute("SELECT id FROM chunks ORDER BY id")]

    def counts(self) -> tuple[int, int]:
        docs = self.conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
        chunks = self.conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        return int(docs), int(chunks)
