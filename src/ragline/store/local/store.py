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
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ragline.errors import IndexLockedError, RaglineError
from ragline.store.lexical import Bm25Settings
from ragline.store.local.ann import ANN_THRESHOLD
from ragline.store.local.bm25 import Bm25Index
from ragline.store.local.catalog import Catalog, connect, create_schema
from ragline.store.local.files import GenerationFiles
from ragline.store.local.reader import LocalReader
from ragline.store.local.vectors import FaissVectors
from ragline.store.local.writer import LocalWriter

CATALOG = "catalog.sqlite"


def ann_threshold_setting() -> int:
    """Chunks past which the vectors get an IVF index: $RAGLINE_ANN_THRESHOLD or 50,000."""
    raw = os.environ.get("RAGLINE_ANN_THRESHOLD")
    if raw is None:
        return ANN_THRESHOLD
    try:
        return int(raw)
    except ValueError:
        raise RaglineError(f"RAGLINE_ANN_THRESHOLD must be a whole number, not {raw!r}") \
            from None


class LocalStore:
    """An index folder. Thread-safe: one SQLite connection per thread, one writer."""

    _vector_files = True  # vectors.<gen>.faiss beside the catalog (not so for Milvus)

    def __init__(self, folder: str | Path, lexical: Bm25Settings | None = None,
                 ann_threshold: int | None = None) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.location = str(self.folder)
        self.lexical_settings = lexical or Bm25Settings()
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self.files = GenerationFiles(self.folder, self.lexical_settings, self._vector_files,
                                     ann_threshold if ann_threshold is not None
                                     else ann_threshold_setting())
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

    # the parts a store that keeps its vectors elsewhere replaces (ragline.store.milvus) -----
    @contextlib.contextmanager
    def _reader(self, catalog: Catalog, info: dict[str, str], generation: int,
                handles: tuple[Any, Any]) -> Iterator[LocalReader]:
        yield LocalReader(self.files, catalog, info, generation, *handles)

    def _writer(self, conn: sqlite3.Connection) -> LocalWriter:
        return LocalWriter(self.files, conn)

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
                handles = self.files.open(generation)
            except FileNotFoundError:
                conn.execute("COMMIT")
                time.sleep(0.01)  # a writer is between its commit and its clean-up
                continue
            try:
                with self._reader(catalog, info, generation, handles) as reader:
                    yield reader
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
            writer = self._writer(conn)
            try:
                yield writer
            finally:
                writer.close()
        finally:
            conn.close()
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
