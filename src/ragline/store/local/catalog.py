"""SQLite catalog of documents, chunks and metadata fields: the local store's source of truth.

Each `Catalog` wraps one connection (one per thread for readers, its own for the writer).
The writer records the vector generation in the same transaction as the rows it describes,
so catalog and vector files always agree.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ragline.store.base import ChunkRecord, DocumentRecord

SCHEMA_VERSION = "2"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    hash TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime REAL NOT NULL,
    ingested_at REAL NOT NULL,
    meta TEXT NOT NULL DEFAULT '{}'
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
    end INTEGER NOT NULL,
    meta TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS chunks_document ON chunks(document_id);
CREATE INDEX IF NOT EXISTS chunks_text_hash ON chunks(text_hash);
CREATE TABLE IF NOT EXISTS fields (name TEXT PRIMARY KEY, type TEXT NOT NULL);
"""

CHUNK_COLUMNS = ("id", "chunk_id", "document_id", "source", "ordinal", "text", "text_hash",
                 "page", "heading", "title", "start", "end", "meta")
_CHUNK_SELECT = ",".join(f'"{c}"' for c in CHUNK_COLUMNS)
_DOC_SELECT = "id, path, hash, size, mtime, meta"


def connect(path: Path, check_same_thread: bool = True) -> sqlite3.Connection:
    """Autocommit mode: transactions are explicit (BEGIN/COMMIT), as the stores need them."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=30.0,
                           check_same_thread=check_same_thread)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def create_schema(conn: sqlite3.Connection) -> None:
    """Create the tables, and bring a version-1 catalog (no metadata) up to date."""
    conn.executescript(_SCHEMA)
    for table in ("documents", "chunks"):
        cols = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
        if "meta" not in cols:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN meta TEXT NOT NULL DEFAULT '{{}}'")


def in_batches(ids: Sequence[Any], size: int = 500) -> Iterator[tuple[list[Any], str]]:
    """Slices of `ids` with their `?,?,...` placeholders (SQLite caps bound parameters)."""
    for i in range(0, len(ids), size):
        part = list(ids[i : i + size])
        yield part, ",".join("?" * len(part))


def _doc(row: Sequence[Any]) -> DocumentRecord:
    return DocumentRecord(path=row[1], hash=row[2], size=row[3], mtime=row[4],
                          meta=json.loads(row[5]), id=row[0])


def _chunk(row: Sequence[Any]) -> ChunkRecord:
    d = dict(zip(CHUNK_COLUMNS, row, strict=True))
    d["meta"] = json.loads(d["meta"])
    return ChunkRecord(**d)


class Catalog:
    """Typed queries over one connection to `catalog.sqlite`."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    # meta and fields ------------------------------------------------------------------------
    def meta(self) -> dict[str, str]:
        return dict(self.conn.execute("SELECT key, value FROM meta").fetchall())

    def set_meta(self, **values: Any) -> None:
        self.conn.executemany(
            "INSERT INTO meta(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [(k, str(v)) for k, v in values.items()],
        )

    def fields(self) -> dict[str, str]:
        return dict(self.conn.execute("SELECT name, type FROM fields ORDER BY name").fetchall())

    def add_fields(self, fields: dict[str, str]) -> None:
        self.conn.executemany("INSERT INTO fields(name, type) VALUES (?, ?)", fields.items())

    # documents ----------------------------------------------------------------------------
    def document(self, path: str) -> DocumentRecord | None:
        row = self.conn.execute(f"SELECT {_DOC_SELECT} FROM documents WHERE path = ?",
                                (path,)).fetchone()
        return _doc(row) if row else None

    def documents(self) -> list[DocumentRecord]:
        rows = self.conn.execute(f"SELECT {_DOC_SELECT} FROM documents ORDER BY path")
        return [_doc(r) for r in rows]

    def upsert_document(self, doc: DocumentRecord, now: float) -> int:
        row = self.conn.execute(
            "INSERT INTO documents(path, hash, size, mtime, ingested_at, meta) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET hash = excluded.hash, "
            "size = excluded.size, mtime = excluded.mtime, ingested_at = excluded.ingested_at, "
            "meta = excluded.meta RETURNING id",
            (doc.path, doc.hash, doc.size, doc.mtime, now, json.dumps(dict(doc.meta))),
        ).fetchone()
        return int(row[0])

    def set_hash(self, document_id: int, hash_: str) -> None:
        self.conn.execute("UPDATE documents SET hash = ? WHERE id = ?", (hash_, document_id))

    def delete_document(self, document_id: int) -> list[int]:
        """Delete a document and its chunks; returns the chunk ids removed."""
        ids = self.delete_chunks_of(document_id)
        self.conn.execute("DELETE FROM documents WHERE id = ?", (document_id,))
        return ids

    # chunks -------------------------------------------------------------------------------
    def delete_chunks_of(self, document_id: int) -> list[int]:
        rows = self.conn.execute("DELETE FROM chunks WHERE document_id = ? RETURNING id",
                                 (document_id,))
        return [r[0] for r in rows]

    def ids_by_text_hash(self, hashes: Iterable[str]) -> dict[str, int]:
        """One chunk id holding each embed-text hash, so its vector can be reused."""
        found: dict[str, int] = {}
        for part, marks in in_batches(list(dict.fromkeys(hashes))):
            for h, cid in self.conn.execute(
                f"SELECT text_hash, MIN(id) FROM chunks WHERE text_hash IN ({marks}) "
                "GROUP BY text_hash", part,
            ):
                found[h] = int(cid)
        return found

    def insert_chunks(self, chunks: Sequence[ChunkRecord]) -> None:
        marks = ",".join("?" * len(CHUNK_COLUMNS))
        self.conn.executemany(
            f"INSERT INTO chunks({_CHUNK_SELECT}) VALUES ({marks})",
            [(c.id, c.chunk_id, c.document_id, c.source, c.ordinal, c.text, c.text_hash,
              c.page, c.heading, c.title, c.start, c.end, json.dumps(dict(c.meta)))
             for c in chunks])

    def chunks(self, ids: Sequence[int]) -> dict[int, ChunkRecord]:
        out: dict[int, ChunkRecord] = {}
        for part, marks in in_batches([int(x) for x in ids]):
            for row in self.conn.execute(
                    f"SELECT {_CHUNK_SELECT} FROM chunks WHERE id IN ({marks})", part):
                out[row[0]] = _chunk(row)
        return out

    def document_chunks(self, document_id: int) -> list[ChunkRecord]:
        rows = self.conn.execute(f"SELECT {_CHUNK_SELECT} FROM chunks WHERE document_id = ? "
                                 "ORDER BY ordinal, id", (document_id,))
        return [_chunk(r) for r in rows]

    def chunk_by_key(self, chunk_id: str) -> ChunkRecord | None:
        row = self.conn.execute(f"SELECT {_CHUNK_SELECT} FROM chunks WHERE chunk_id = ?",
                                (chunk_id,)).fetchone()
        return _chunk(row) if row else None

    def chunk_counts(self) -> dict[int, int]:
        return dict(self.conn.execute(
            "SELECT document_id, COUNT(*) FROM chunks GROUP BY document_id").fetchall())

    def chunk_ids(self) -> list[int]:
        return [r[0] for r in self.conn.execute("SELECT id FROM chunks ORDER BY id")]

    def id_hashes(self) -> tuple[list[int], list[str]]:
        rows = self.conn.execute("SELECT id, text_hash FROM chunks ORDER BY id").fetchall()
        return [int(r[0]) for r in rows], [str(r[1]) for r in rows]

    def lexical_texts(self, ids: Sequence[int], title_weight: int) -> list[str]:
        from ragline.store.lexical import lexical_text

        found: dict[int, str] = {}
        for part, marks in in_batches([int(x) for x in ids]):
            for cid, title, heading, text in self.conn.execute(
                    f"SELECT id, title, heading, text FROM chunks WHERE id IN ({marks})", part):
                found[int(cid)] = lexical_text(title, heading, text, title_weight)
        return [found[int(i)] for i in ids]

    def filtered_ids(self, sql: str, params: Sequence[Any]) -> list[int]:
        return [r[0] for r in self.conn.execute(
            f"SELECT id FROM chunks WHERE {sql} ORDER BY id", params)]  # sorted: np.isin

    def counts(self) -> tuple[int, int]:
        docs = self.conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
        chunks = self.conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        return int(docs), int(chunks)
