"""The PostgreSQL store's write unit: one transaction on its own connection, behind a lock.

Each transaction starts with `pg_advisory_xact_lock`, so writers of any number of processes
run one after another (a second one waits; it does not fail), and, in READ COMMITTED, each of
its statements sees the last commit of every other writer. Chunks and postings are copied in
(COPY); document frequencies and the BM25 totals are summed in memory and written once, at
commit: updating the same `terms` rows for every batch of one transaction leaves chains of
row versions that every later batch has to walk (10k chunks took 330 s that way, 12 s now).
The posting blocks that searches read (`lexical.py`) follow at commit too: the postings of
added chunks are appended to them, deleted ones taken out.
"""

from __future__ import annotations

import secrets
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

from ragline.errors import RaglineError
from ragline.store.base import (
    ChunkRecord,
    DocumentRecord,
    Meta,
    check_field_types,
    check_info,
    check_vectors,
)
from ragline.store.lexical import Analyzer, Bm25Settings
from ragline.store.postgres import schema
from ragline.store.postgres.lexical import BlockChanges, Postings, analysis_key, postings

DOC_SELECT = "id, path, hash, size, mtime, meta"
HNSW_M, HNSW_EF_CONSTRUCTION = 16, 64
HNSW_INDEX = "chunks_embedding_hnsw"
HNSW_LABEL = f"hnsw (m={HNSW_M}, ef_construction={HNSW_EF_CONSTRUCTION})"
#: Exact search reads every row's vector: ~0.85 ms per 1k chunks at 384 dimensions on 2 cores
#: (9 ms at 10k, 17 ms at 20k, 75 ms at 100k), while HNSW answers in 2.5 ms at 20k (recall@10
#: 1.00) for a one-off build of ~1.5 s at 10k and ~30% slower ingest after it. 10k keeps the
#: exact path under ~10 ms, a third of the 30 ms hybrid budget.
DEFAULT_HNSW_THRESHOLD = 10_000
#: the most an HNSW build asks for: past maintenance_work_mem a build goes on far slower, on
#: disk, but a parallel build also takes that much shared memory on the server
HNSW_BUILD_MEMORY_CAP_KB = 8 * 2**20
_COPY_CHUNKS = ('COPY chunks (id, chunk_id, document_id, source, ordinal, text, text_hash, '
                'page, heading, title, start, "end", meta, lex_len, embedding) '
                "FROM STDIN (FORMAT BINARY)")
_CHUNK_TYPES = ["int8", "text", "int8", "text", "int4", "text", "text", "int4", "text", "text",
                "int4", "int4", "jsonb", "int4", "vector"]


def build_memory_kb(conn: psycopg.Connection[Any], rows: int, dim: int) -> int:
    """maintenance_work_mem for an HNSW build of `rows` vectors: the graph in memory (each
    element's vector plus its 2m level-0 neighbours and overhead, x1.25), never less than
    the server's own setting and at most `HNSW_BUILD_MEMORY_CAP_KB`."""
    need = rows * (4 * dim + 2 * HNSW_M * 16 + 200) * 5 // 4 // 1024
    (current,) = conn.execute(
        "SELECT setting::bigint FROM pg_settings WHERE name = 'maintenance_work_mem'"
    ).fetchone() or (65536,)
    return max(int(current), min(need, HNSW_BUILD_MEMORY_CAP_KB))


def doc_record(row: Sequence[Any]) -> DocumentRecord:
    return DocumentRecord(path=row[1], hash=row[2], size=row[3], mtime=row[4], meta=row[5],
                          id=row[0])


def find_document(conn: psycopg.Connection[Any], path: str) -> DocumentRecord | None:
    """The document at `path`, as the connection's transaction sees it (reader or writer)."""
    row = conn.execute(f"SELECT {DOC_SELECT} FROM documents WHERE path = %s",
                       (path,)).fetchone()
    return doc_record(row) if row else None


def all_documents(conn: psycopg.Connection[Any]) -> list[DocumentRecord]:
    """Every document, by path in byte order (the local store's order)."""
    rows = conn.execute(f'SELECT {DOC_SELECT} FROM documents ORDER BY path COLLATE "C"')
    return [doc_record(r) for r in rows.fetchall()]


@dataclass(frozen=True)
class WriteSettings:
    """What a writer needs of its store (and no more, so this module does not import it)."""

    lexical_settings: Bm25Settings
    analyzer: Analyzer
    hnsw_threshold: int | None


class PostgresWriter:
    """The open write unit: a transaction holding the write lock; its reads see its own
    changes. Each change is a savepoint, so a failed one leaves the unit usable."""

    def __init__(self, settings: WriteSettings, conn: psycopg.Connection[Any]) -> None:
        self._store = settings
        self._conn = conn
        self._begin()

    def _begin(self) -> None:
        self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (schema.WRITE_LOCK,))
        self._info: dict[str, str] = dict(self._rows("SELECT key, value FROM ragline_meta"))
        self._fields: dict[str, str] = dict(self._rows("SELECT name, type FROM fields"))
        self._dirty = False
        self._df: Counter[str] = Counter()  # df changes not yet in `terms`
        self._chunks = self._length = 0  # changes not yet in `lexical_stats`
        self._blocks = BlockChanges()  # for the posting blocks, at commit
        key = analysis_key(self._store.lexical_settings)
        if self._info.get("lexical", key) != key:
            self._rebuild_postings()

    def _rows(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        return self._conn.execute(sql, params).fetchall()  # type: ignore[arg-type]

    def _set_meta(self, **values: object) -> None:
        changed = {k: str(v) for k, v in values.items() if self._info.get(k) != str(v)}
        if changed:
            self._conn.cursor().executemany(
                "INSERT INTO ragline_meta (key, value) VALUES (%s, %s) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value", list(changed.items()))
            self._info.update(changed)
            self._dirty = True

    # state ----------------------------------------------------------------------------------
    def info(self) -> dict[str, str]:
        return dict(self._info)

    def set_info(self, **values: str | int) -> None:
        check_info(self._info, values)
        if "dim" in values and "dim" not in self._info:
            dim = int(values["dim"])
            if dim <= 0:
                raise ValueError(f"vector dimension must be positive, not {dim}")
            with self._conn.transaction():
                for sql in schema.vector_column(dim):
                    self._conn.execute(sql)  # type: ignore[arg-type]
        self._set_meta(**values)

    def fields(self) -> dict[str, str]:
        return dict(self._fields)

    def register_fields(self, meta: Meta, where: str = "") -> None:
        new = check_field_types(self._fields, meta, where)
        if new:
            self._conn.cursor().executemany("INSERT INTO fields (name, type) VALUES (%s, %s)",
                                            list(new.items()))
            self._fields.update(new)
            self._dirty = True

    def document(self, path: str) -> DocumentRecord | None:
        return find_document(self._conn, path)

    def documents(self) -> list[DocumentRecord]:
        return all_documents(self._conn)

    # changes --------------------------------------------------------------------------------
    def put_document(self, doc: DocumentRecord) -> int:
        self.register_fields(doc.meta, doc.path)
        with self._conn.transaction():
            existing = self.document(doc.path)
            dropped = self._drop_chunks(existing.id) if existing is not None else None
            row = self._rows(
                "INSERT INTO documents (path, hash, size, mtime, ingested_at, meta) "
                "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (path) DO UPDATE SET "
                "hash = excluded.hash, size = excluded.size, mtime = excluded.mtime, "
                "ingested_at = excluded.ingested_at, meta = excluded.meta RETURNING id",
                (doc.path, doc.hash, doc.size, doc.mtime, time.time(), Jsonb(dict(doc.meta))))
        if dropped is not None:
            self._dropped(dropped)
        self._dirty = True
        return int(row[0][0])

    def set_document_hash(self, document_id: int, hash_: str) -> None:
        self._conn.execute("UPDATE documents SET hash = %s WHERE id = %s", (hash_, document_id))
        self._dirty = True

    def delete_document(self, document_id: int) -> None:
        with self._conn.transaction():
            dropped = self._drop_chunks(document_id)
            self._conn.execute("DELETE FROM documents WHERE id = %s", (document_id,))
        self._dropped(dropped)
        self._dirty = True

    def _drop_chunks(self, document_id: int) -> tuple[Postings, list[tuple[str, int]]]:
        """Delete a document's chunks and their postings; returns what they counted and the
        (term, chunk id) of each posting, for `_dropped` once the savepoint holds."""
        gone = self._rows("DELETE FROM postings p USING chunks c WHERE c.document_id = %s "
                          "AND p.chunk_id = c.id RETURNING p.term, p.chunk_id", (document_id,))
        lengths = self._rows("DELETE FROM chunks WHERE document_id = %s RETURNING lex_len",
                             (document_id,))
        lex = Postings([n for (n,) in lengths], [], Counter(t for t, _ in gone))
        return lex, gone  # type: ignore[return-value]

    def _dropped(self, dropped: tuple[Postings, list[tuple[str, int]]]) -> None:
        """Take dropped chunks out of the pending totals and blocks (not before their savepoint
        is released: one rolled back leaves them where they were)."""
        self._count(dropped[0], -1)
        self._blocks.drop(dropped[1])

    def _count(self, lex: Postings, sign: int) -> None:
        """Add (sign 1) or remove (-1) chunks' terms and lengths from the pending totals."""
        if sign > 0:
            self._df.update(lex.df)
        else:
            self._df.subtract(lex.df)
        self._chunks += sign * len(lex.lengths)
        self._length += sign * sum(lex.lengths)

    def add_chunks(self, document_id: int, chunks: Sequence[ChunkRecord],
                   vectors: np.ndarray) -> list[int]:
        if "dim" not in self._info:
            raise RaglineError("set_info(dim=...) must come before the first vectors")
        arr = check_vectors(vectors, int(self._info["dim"]), len(chunks))
        for c in chunks:
            self.register_fields(c.meta, c.source)
        if not chunks:
            return []
        settings = self._store.lexical_settings
        with self._conn.transaction():
            # a sequence: ids are never given twice, even by transactions rolled back
            ids = sorted(r[0] for r in self._rows(
                "SELECT nextval('chunk_ids') FROM generate_series(1, %s)", (len(chunks),)))
            lex = postings(self._store.analyzer, settings,
                           [(i, c.title, c.heading, c.text) for i, c in zip(ids, chunks,
                                                                             strict=True)])
            # binary COPY: 2000 chunks of 384-d vectors in 47 ms, executemany took 86 ms
            with self._conn.cursor().copy(_COPY_CHUNKS) as copy:
                copy.set_types(_CHUNK_TYPES)
                for i, c, n, vec in zip(ids, chunks, lex.lengths, arr, strict=True):
                    copy.write_row((i, c.chunk_id, document_id, c.source, c.ordinal, c.text,
                                    c.text_hash, c.page, c.heading, c.title, c.start, c.end,
                                    Jsonb(dict(c.meta)), n, vec))
            self._copy_postings(lex)
        self._blocks.added.extend(ids)
        self._count(lex, 1)
        self._set_meta(lexical=analysis_key(settings))
        self._dirty = True
        return ids

    def _copy_postings(self, lex: Postings) -> None:
        # text COPY in one piece: terms are runs of word characters (no tab, newline or
        # backslash to escape); 200k postings: 0.66 s, against 0.79 s by binary write_row
        data = "".join(f"{t}\t{c}\t{tf}\t{n}\n" for t, c, tf, n in lex.rows)
        with self._conn.cursor().copy("COPY postings (term, chunk_id, tf, lex_len) "
                                      "FROM STDIN") as copy:
            copy.write(data.encode())

    def _flush_lexical(self) -> None:
        """Write the pending df changes, totals and blocks (once per commit, see the module
        doc)."""
        df = {t: n for t, n in self._df.items() if n}
        if df:
            gone = self._rows(
                "INSERT INTO terms AS t (term, df) SELECT * FROM unnest(%s::text[], %s::int[]) "
                "ON CONFLICT (term) DO UPDATE SET df = t.df + excluded.df "
                "RETURNING t.term, t.df", (list(df), list(df.values())))
            unused = [t for t, n in gone if n <= 0]
            if unused:
                self._conn.execute("DELETE FROM terms WHERE term = ANY(%s)", (unused,))
        self._conn.execute("UPDATE lexical_stats SET chunks = chunks + %s, total_len = "
                           "total_len + %s, stamp = %s",
                           (self._chunks, self._length, secrets.randbits(63)))
        self._blocks.write(self._conn)
        self._df, self._chunks, self._length = Counter(), 0, 0
        self._blocks = BlockChanges()

    def _rebuild_postings(self) -> None:
        """Postings made with another title weight or stemmer: make them again from the
        chunks, in this transaction (the local store rebuilds its BM25 file likewise)."""
        settings = self._store.lexical_settings
        for table in ("postings", "terms"):
            self._conn.execute(f"DELETE FROM {table}")  # not TRUNCATE: readers go on reading
        self._conn.execute("UPDATE lexical_stats SET chunks = 0, total_len = 0")
        self._blocks = BlockChanges(every=True)  # at commit
        self._dirty = True
        with self._conn.cursor(name="ragline_rebuild") as cur:
            cur.execute("SELECT id, title, heading, text FROM chunks ORDER BY id")
            while batch := cur.fetchmany(2000):
                lex = postings(self._store.analyzer, settings, batch)
                self._copy_postings(lex)
                self._count(lex, 1)
                self._conn.execute(
                    "UPDATE chunks SET lex_len = v.n FROM unnest(%s::bigint[], %s::int[]) "
                    "AS v(id, n) WHERE chunks.id = v.id", ([r[0] for r in batch], lex.lengths))
        self._set_meta(lexical=analysis_key(settings))

    def vectors_for_hashes(self, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        want = list(dict.fromkeys(hashes))
        if not want or "dim" not in self._info:
            return {}
        rows = self._conn.cursor(binary=True).execute(
            "SELECT DISTINCT ON (text_hash) text_hash, embedding FROM chunks "
            "WHERE text_hash = ANY(%s) ORDER BY text_hash, id", (want,)).fetchall()
        return {h: v.to_numpy().astype(np.float32, copy=False) for h, v in rows}

    def commit(self) -> None:
        """Write the BM25 totals, build the HNSW index if the index just passed the
        threshold, commit, and start the next transaction (taking the lock again)."""
        if self._dirty:
            self._flush_lexical()
            self._maybe_build_hnsw()
        self._conn.commit()
        self._begin()

    def _maybe_build_hnsw(self) -> None:
        threshold = self._store.hnsw_threshold
        if threshold is None:
            threshold = int(self._info.get("hnsw_threshold", DEFAULT_HNSW_THRESHOLD))
        self._set_meta(hnsw_threshold=threshold)
        if "dim" not in self._info or self._info.get("vector_index", "").startswith("hnsw"):
            return
        (n,) = self._rows("SELECT chunks FROM lexical_stats")[0]
        if n >= threshold:
            self._conn.execute("SELECT set_config('maintenance_work_mem', %s, true)",
                               (f"{build_memory_kb(self._conn, n, int(self._info['dim']))}kB",))
            self._conn.execute(
                f"CREATE INDEX IF NOT EXISTS {HNSW_INDEX} ON chunks USING hnsw "
                f"(embedding vector_ip_ops) WITH (m = {HNSW_M}, "
                f"ef_construction = {HNSW_EF_CONSTRUCTION})")
            self._set_meta(vector_index=HNSW_LABEL)
        else:
            self._set_meta(vector_index="exact")

    def abort(self) -> None:
        """Back to the last commit; the next transaction starts (and locks) at once."""
        self._conn.rollback()
        self._begin()
