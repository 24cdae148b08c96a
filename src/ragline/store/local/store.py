"""The local store: SQLite catalog + FAISS vectors + BM25 postings in one folder.

A commit writes the vectors and the postings to new generation files (`vectors.<gen>.faiss`,
`lexical.<gen>.npz`, each atomically), then records the generation in the same SQLite
transaction as the catalog rows, then deletes older files. A process killed at any moment
leaves the last committed generation readable, with catalog, vectors and postings agreeing.
One writer at a time (a file lock); readers take a snapshot: a SQLite read transaction plus
open handles on that generation's files, so a commit in between cannot pull them away.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import IO

import faiss
import numpy as np

from ragline.errors import IndexLockedError, RaglineError
from ragline.store.base import (
    ChunkRecord,
    DocumentRecord,
    Meta,
    Run,
    check_field_types,
    check_info,
    check_vectors,
    empty_run,
)
from ragline.store.filters import Filter, to_sql
from ragline.store.lexical import Bm25Settings
from ragline.store.local.bm25 import Bm25Index
from ragline.store.local.catalog import SCHEMA_VERSION, Catalog, connect, create_schema
from ragline.store.local.vectors import FaissVectors, vectors_path

CATALOG = "catalog.sqlite"
_GENERATION_FILE = re.compile(r"^(vectors\.(\d+)\.faiss|lexical\.(\d+)\.npz)$")


def lexical_path(folder: Path, generation: int) -> Path:
    return Path(folder) / f"lexical.{generation}.npz"


class LocalStore:
    """An index folder. Thread-safe: one SQLite connection per thread, one writer."""

    def __init__(self, folder: str | Path, lexical: Bm25Settings | None = None) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.location = str(self.folder)
        self.lexical_settings = lexical or Bm25Settings()
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._vectors: FaissVectors | None = None  # of the newest generation loaded
        self._lexical: tuple[int, Bm25Index] | None = None
        # chunk ids a filter keeps, per (generation, filter): a server sees the same few
        # filters again and again, and evaluating one scans every chunk's metadata
        self._allowed: OrderedDict[tuple[int, Filter], np.ndarray] = OrderedDict()
        conn = self._conn()
        create_schema(conn)
        self._release(conn)

    def _conn(self) -> sqlite3.Connection:
        """A free connection of this thread (a nested snapshot gets its own)."""
        free: list[sqlite3.Connection] = self._local.__dict__.setdefault("free", [])
        if free:
            return free.pop()
        conn = connect(self.folder / CATALOG, check_same_thread=False)
        with self._lock:
            self._conns.append(conn)
        return conn

    def _release(self, conn: sqlite3.Connection) -> None:
        self._local.__dict__.setdefault("free", []).append(conn)

    def close(self) -> None:
        with self._lock:
            for conn in self._conns:
                conn.close()
            self._conns.clear()
        self._local = threading.local()

    def __enter__(self) -> LocalStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # reading ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def read(self) -> Iterator[LocalReader]:
        """A snapshot of the last commit (retried if a commit removes its files meanwhile)."""
        conn = self._conn()
        for _ in range(20):
            conn.execute("BEGIN")
            try:
                catalog = Catalog(conn)
                info = catalog.meta()
                generation = int(info.get("generation", 0))
                handles = self._open_files(generation)
            except FileNotFoundError:
                conn.execute("COMMIT")
                time.sleep(0.01)  # a writer is between its commit and its clean-up
                continue
            try:
                yield LocalReader(self, catalog, info, generation, *handles)
            finally:
                for fh in handles:
                    if fh is not None and not isinstance(fh, FaissVectors | Bm25Index):
                        fh.close()
                if conn.in_transaction:
                    conn.execute("COMMIT")
                self._release(conn)
            return
        self._release(conn)
        raise RaglineError(f"{self.folder}: the index changed too often to take a snapshot")

    def _open_files(self, generation: int) -> tuple[FaissVectors | IO[bytes] | None,
                                                    Bm25Index | IO[bytes] | None]:
        """The generation's loaded state where it is loaded, else open handles on its files
        (an unlinked file stays readable through its handle)."""
        with self._lock:
            vec: FaissVectors | IO[bytes] | None = self._vectors
            lex: Bm25Index | IO[bytes] | None = None
            if self._lexical is not None and self._lexical[0] == generation:
                lex = self._lexical[1]
        if vec is None or vec.generation != generation:  # type: ignore[union-attr]
            vec = None
            if generation > 0:
                vec = open(vectors_path(self.folder, generation), "rb")  # noqa: SIM115
        if lex is None:
            with contextlib.suppress(FileNotFoundError):
                lex = open(lexical_path(self.folder, generation), "rb")  # noqa: SIM115
        return vec, lex

    def _load_vectors(self, generation: int, dim: int, fh: IO[bytes] | None) -> FaissVectors:
        vectors = FaissVectors(self.folder, dim)
        if fh is not None:
            vectors.index = faiss.deserialize_index(np.frombuffer(fh.read(), np.uint8))
            vectors.generation = generation
        with self._lock:
            if self._vectors is None or self._vectors.generation < generation:
                self._vectors = vectors
        return vectors

    def _load_lexical(self, generation: int, catalog: Catalog,
                      fh: IO[bytes] | None) -> Bm25Index:
        lex = Bm25Index.load(fh, self.lexical_settings) if fh is not None else None
        if lex is None:  # absent or damaged: rebuild from the snapshot's catalog
            lex = sync_lexical(Bm25Index(self.lexical_settings), catalog)
            with contextlib.suppress(OSError):  # a read-only folder still searches
                lex.save(lexical_path(self.folder, generation))
        with self._lock:
            if self._lexical is None or self._lexical[0] < generation:
                self._lexical = (generation, lex)
        return lex

    def allowed_ids(self, generation: int, where: Filter, catalog: Catalog) -> np.ndarray:
        """Sorted ids of the chunks `where` keeps in `generation` (cached, 32 filters)."""
        key = (generation, where)
        with self._lock:
            if key in self._allowed:
                self._allowed.move_to_end(key)
                return self._allowed[key]
        sql, params = to_sql(where, catalog.fields(), "sqlite", column="meta")
        ids = np.array(catalog.filtered_ids(sql, params), dtype=np.int64)
        with self._lock:
            self._allowed[key] = ids
            while len(self._allowed) > 32:
                self._allowed.popitem(last=False)
        return ids

    def _publish(self, generation: int, vectors: FaissVectors | None,
                 lexical: Bm25Index | None) -> None:
        """A finished writer hands its state to readers, so they need not load it again."""
        with self._lock:
            if vectors is not None and (self._vectors is None
                                        or self._vectors.generation < generation):
                self._vectors = vectors
            if lexical is not None and (self._lexical is None or self._lexical[0] < generation):
                self._lexical = (generation, lexical)

    # writing ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def write(self) -> Iterator[LocalWriter]:
        """The one writer: a file lock, its own connection, one open transaction."""
        fd = os.open(self.folder / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise IndexLockedError(f"{self.folder} is being written by another process") from None
        conn = connect(self.folder / CATALOG)
        try:
            writer = LocalWriter(self, conn)
            try:
                yield writer
            finally:
                writer.close()
        finally:
            conn.close()
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def collect_garbage(self, keep: int) -> None:
        """Delete files of other generations and temp files left by killed writers."""
        for entry in self.folder.iterdir():
            m = _GENERATION_FILE.match(entry.name)
            stale = (m is not None and int(m.group(2) or m.group(3)) != keep) or \
                entry.name.endswith(".tmp")
            if stale:
                entry.unlink(missing_ok=True)


def sync_lexical(lex: Bm25Index, catalog: Catalog) -> Bm25Index:
    """Make BM25 hold exactly the catalog's chunks, tokenizing only new or changed ones."""
    ids, hashes = catalog.id_hashes()
    weight = lex.settings.title_weight
    lex.update(ids, hashes, None, fetch=lambda new: catalog.lexical_texts(new, weight))
    return lex


class LocalReader:
    """Reads of one snapshot; vectors and BM25 load on first use and are shared by readers."""

    def __init__(self, store: LocalStore, catalog: Catalog, info: dict[str, str],
                 generation: int, vectors: FaissVectors | IO[bytes] | None,
                 lexical: Bm25Index | IO[bytes] | None) -> None:
        self._store = store
        self._catalog = catalog
        self._info = info
        self._generation = generation
        self._vec_source = vectors
        self._lex_source = lexical

    def _vectors(self) -> FaissVectors:
        src = self._vec_source
        if not isinstance(src, FaissVectors):
            dim = int(self._info.get("dim", 0))
            src = self._vec_source = self._store._load_vectors(self._generation, dim, src)
        return src

    def _lexical(self) -> Bm25Index:
        src = self._lex_source
        if not isinstance(src, Bm25Index):
            src = self._lex_source = self._store._load_lexical(self._generation,
                                                               self._catalog, src)
        return src

    def info(self) -> dict[str, str]:
        return dict(self._info)

    def counts(self) -> tuple[int, int]:
        return self._catalog.counts()

    def fields(self) -> dict[str, str]:
        return self._catalog.fields()

    def document(self, path: str) -> DocumentRecord | None:
        return self._catalog.document(path)

    def documents(self) -> list[DocumentRecord]:
        return self._catalog.documents()

    def chunk_ids(self) -> np.ndarray:
        return np.array(self._catalog.chunk_ids(), dtype=np.int64)

    def chunks(self, ids: Sequence[int]) -> dict[int, ChunkRecord]:
        return self._catalog.chunks(ids)

    def document_chunks(self, document_id: int) -> list[ChunkRecord]:
        return self._catalog.document_chunks(document_id)

    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        return self._vectors().get(np.asarray(ids, dtype=np.int64))

    def _allowed(self, where: Filter | None) -> np.ndarray | None:
        if where is None:
            return None
        return self._store.allowed_ids(self._generation, where, self._catalog)

    def dense_search(self, queries: np.ndarray, k: int,
                     where: Filter | None = None) -> list[Run]:
        allowed = self._allowed(where)
        q = np.atleast_2d(queries)
        if "dim" not in self._info:
            return [empty_run() for _ in range(len(q))]
        scores, ids = self._vectors().search(q, k, allowed)
        out: list[Run] = []
        for row_ids, row_scores in zip(ids, scores, strict=True):
            keep = row_ids >= 0
            out.append((row_ids[keep].astype(np.int64), row_scores[keep].astype(np.float32)))
        return out

    def lexical_search(self, query: str, k: int, where: Filter | None = None) -> Run:
        allowed = self._allowed(where)
        return self._lexical().search(query, k, allowed)

    def stats(self) -> dict[str, object]:
        files = [f for f in self._store.folder.iterdir() if f.is_file()]
        return {"store": "local (SQLite + FAISS + BM25 files)",
                "vectors": len(self._vectors()) if "dim" in self._info else 0,
                "generation": self._generation,
                "schema": self._info.get("schema", SCHEMA_VERSION),
                "vector_index": "exact (FAISS IndexFlatIP)",
                "disk_bytes": sum(f.stat().st_size for f in files)}


    def verify(self) -> list[str]:
        ids, hashes = self._catalog.id_hashes()
        problems = []
        vec = sorted(self._vectors().ids().tolist()) if "dim" in self._info else []
        if vec != ids:
            problems.append(f"catalog holds {len(ids)} chunks, the vector file {len(vec)} "
                            f"({len(set(ids) ^ set(vec))} differ)")
        lex = self._lexical()
        if dict(zip(lex.ids.tolist(), lex.hashes, strict=True)) != dict(
                zip(ids, hashes, strict=True)):
            problems.append(f"catalog holds {len(ids)} chunks, BM25 {len(lex)} (or their "
                            "texts differ)")
        return problems


class LocalWriter:
    """The open write unit: a SQLite transaction plus in-memory FAISS and BM25 state."""

    def __init__(self, store: LocalStore, conn: sqlite3.Connection) -> None:
        self._store = store
        self._conn = conn
        self._catalog = Catalog(conn)
        self._committed: tuple[FaissVectors | None, Bm25Index | None] | None = None
        self._begin()

    def _begin(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")
        meta = self._catalog.meta()
        self._info = meta
        self._generation = int(meta.get("generation", 0))
        self._next_id = int(meta.get("next_id", 0))
        self._fields = self._catalog.fields()
        self._vecs: FaissVectors | None = None
        self._lex: Bm25Index | None = None
        self._dirty = False

    def close(self) -> None:
        """Drop what was not committed; hand the committed state to readers."""
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")
        if self._committed is not None and not self._dirty:
            self._store._publish(self._generation, *self._committed)

    # state ----------------------------------------------------------------------------------
    def _vectors(self) -> FaissVectors:
        if self._vecs is None:
            if "dim" not in self._info:
                raise RaglineError("set_info(dim=...) must come before the first vectors")
            self._vecs = FaissVectors(self._store.folder, int(self._info["dim"]),
                                      self._generation)
        return self._vecs

    def info(self) -> dict[str, str]:
        return dict(self._info)

    def set_info(self, **values: str | int) -> None:
        check_info(self._info, values)
        changed = {k: str(v) for k, v in values.items() if self._info.get(k) != str(v)}
        if changed:
            self._catalog.set_meta(**changed)
            self._info.update(changed)
            self._dirty = True

    def fields(self) -> dict[str, str]:
        return dict(self._fields)

    def register_fields(self, meta: Meta, where: str = "") -> None:
        new = check_field_types(self._fields, meta, where)
        if new:
            self._catalog.add_fields(new)
            self._fields.update(new)
            self._dirty = True

    def document(self, path: str) -> DocumentRecord | None:
        return self._catalog.document(path)

    def documents(self) -> list[DocumentRecord]:
        return self._catalog.documents()

    # changes --------------------------------------------------------------------------------
    def put_document(self, doc: DocumentRecord) -> int:
        self.register_fields(doc.meta, doc.path)
        existing = self._catalog.document(doc.path)
        if existing is not None:
            self._vectors().remove(self._catalog.delete_chunks_of(existing.id))
        self._dirty = True
        return self._catalog.upsert_document(doc, time.time())

    def set_document_hash(self, document_id: int, hash_: str) -> None:
        self._catalog.set_hash(document_id, hash_)
        self._dirty = True

    def delete_document(self, document_id: int) -> None:
        self._vectors().remove(self._catalog.delete_document(document_id))
        self._dirty = True

    def add_chunks(self, document_id: int, chunks: Sequence[ChunkRecord],
                   vectors: np.ndarray) -> list[int]:
        arr = check_vectors(vectors, self._vectors().dim, len(chunks))
        for c in chunks:
            self.register_fields(c.meta, c.source)
        ids = list(range(self._next_id + 1, self._next_id + 1 + len(chunks)))
        rows = [replace(c, id=i, document_id=document_id)
                for c, i in zip(chunks, ids, strict=True)]
        self._catalog.insert_chunks(rows)
        self._vectors().add(np.array(ids, dtype=np.int64), arr)
        self._next_id += len(chunks)
        self._dirty = True
        return ids

    def vectors_for_hashes(self, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        known = self._catalog.ids_by_text_hash(hashes)
        if not known:
            return {}
        vecs = self._vectors().get(np.array(list(known.values()), dtype=np.int64))
        return dict(zip(known, vecs, strict=True))

    def commit(self) -> None:
        """Vector and BM25 files of the next generation first, then the catalog commit."""
        if not self._dirty:
            return
        generation = self._generation + 1
        vectors = self._vectors() if "dim" in self._info else None
        if vectors is not None:
            vectors.commit(generation)
        lexical = self._lexical()
        lexical.save(lexical_path(self._store.folder, generation))
        self._catalog.set_meta(generation=generation, next_id=self._next_id,
                               schema=SCHEMA_VERSION)
        self._conn.execute("COMMIT")
        self._store.collect_garbage(keep=generation)
        self._generation = generation
        self._committed = (vectors, lexical)
        self._dirty = False
        self._conn.execute("BEGIN IMMEDIATE")
        self._info = self._catalog.meta()

    def _lexical(self) -> Bm25Index:
        if self._lex is None:
            settings = self._store.lexical_settings
            path = lexical_path(self._store.folder, self._generation)
            self._lex = (Bm25Index.load(path, settings) if path.exists() else None) \
                or Bm25Index(settings)
        return sync_lexical(self._lex, self._catalog)

    def abort(self) -> None:
        """Back to the last commit: the catalog rolls back, vectors and BM25 reload."""
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")
        self._begin()
