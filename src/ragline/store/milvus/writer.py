"""The Milvus store's write unit: the local writer (SQLite catalog + BM25 files) with its
vectors going to a Milvus collection instead of a FAISS file.

Milvus has no transaction shared with the catalog, so the write order carries consistency:

1. `commit` inserts the unit's new vectors into Milvus first. Their ids are above the
   committed `next_id`, and every search is limited to `id <= next_id` of its snapshot, so
   they are invisible until step 2; a process killed here leaves orphans that the next writer
   deletes (`id > next_id`) before it inserts anything. Once `EXACT_TAIL` rows (counted
   across commits in `milvus_state`) wait unsealed, it also settles the collection, so no
   snapshot is ever searched through Milvus's interim IVF index (see `collection.py`).
2. The catalog commits (rows, `next_id`, generation, BM25 file) in one SQLite transaction.
   Chunks it deleted are recorded in `milvus_tombstones` in that same transaction, and every
   search excludes the tombstoned ids of its snapshot.
3. Then the tombstoned vectors are deleted from Milvus and their rows dropped; a process
   killed before that leaves tombstones, deleted by the next commit or writer.

So at every instant the chunks a search can return are exactly the catalog's.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence

import numpy as np

from ragline.errors import RaglineError
from ragline.store.base import check_vectors
from ragline.store.local.catalog import in_batches
from ragline.store.local.files import GenerationFiles
from ragline.store.local.writer import LocalWriter
from ragline.store.milvus.collection import EXACT_TAIL, MilvusCollection, MilvusFailure

MILVUS_SCHEMA = """
CREATE TABLE IF NOT EXISTS milvus_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS milvus_tombstones (id INTEGER PRIMARY KEY,
                                              generation INTEGER NOT NULL);
"""


def tombstones(conn: sqlite3.Connection) -> list[int]:
    return [r[0] for r in conn.execute("SELECT id FROM milvus_tombstones ORDER BY id")]


def record_ts(conn: sqlite3.Connection, ts: int) -> None:
    """Raise the Milvus timestamp snapshots read at (never lowers it)."""
    conn.execute("INSERT INTO milvus_state(key, value) VALUES ('ts', ?) ON CONFLICT(key) DO "
                 "UPDATE SET value = MAX(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))",
                 (str(ts),))


def _state_int(conn: sqlite3.Connection, key: str) -> int:
    row = conn.execute("SELECT value FROM milvus_state WHERE key = ?", (key,)).fetchone()
    return int(row[0]) if row else 0


def read_ts(conn: sqlite3.Connection) -> int:
    """The Milvus timestamp of the last committed insert (0 before any)."""
    return _state_int(conn, "ts")


def add_unsealed(conn: sqlite3.Connection, rows: int, collection: MilvusCollection) -> None:
    """Count `rows` more rows waiting in growing segments; past `EXACT_TAIL`, settle the
    collection first (a kill before the count is reset only settles again, early)."""
    waiting = _state_int(conn, "unsealed") + rows
    if waiting >= EXACT_TAIL:
        collection.settle()
        waiting = 0
    conn.execute("INSERT INTO milvus_state(key, value) VALUES ('unsealed', ?) "
                 "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (str(waiting),))


def purge_tombstones(conn: sqlite3.Connection, collection: MilvusCollection,
                     upto_generation: int) -> int:
    """Delete from Milvus the vectors tombstoned at or before `upto_generation`, then their
    rows in a transaction of their own (a kill in between only repeats a delete)."""
    ids = [r[0] for r in conn.execute(
        "SELECT id FROM milvus_tombstones WHERE generation <= ? ORDER BY id",
        (upto_generation,))]
    if not ids:
        return 0
    collection.delete_ids(ids)  # returns once every later read sees them gone
    conn.execute("BEGIN IMMEDIATE")
    for part, marks in in_batches(ids):
        conn.execute(f"DELETE FROM milvus_tombstones WHERE id IN ({marks})", part)
    conn.execute("COMMIT")
    return len(ids)


class MilvusVectors:
    """The writer's vector side: new vectors wait in memory for `commit`; removals become
    tombstones in the writer's SQLite transaction."""

    def __init__(self, collection: MilvusCollection, conn: sqlite3.Connection, dim: int,
                 generation: int) -> None:
        self.collection = collection
        self.dim = dim
        self._conn = conn
        self._generation = generation
        self._pending: dict[int, np.ndarray] = {}
        collection.ensure(dim)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        arr = check_vectors(vectors, self.dim, len(ids))
        for i, v in zip(np.asarray(ids, dtype=np.int64).tolist(), arr, strict=True):
            self._pending[i] = v

    def remove(self, ids: Sequence[int]) -> int:
        stored = [int(i) for i in ids if self._pending.pop(int(i), None) is None]
        self._conn.executemany(
            "INSERT OR REPLACE INTO milvus_tombstones(id, generation) VALUES (?, ?)",
            [(i, self._generation + 1) for i in stored])
        return len(ids)

    def get(self, ids: Sequence[int]) -> np.ndarray:
        ids = [int(i) for i in ids]
        out = self.collection.vectors([i for i in ids if i not in self._pending], self.dim)
        stored = iter(out)
        return np.array([self._pending[i] if i in self._pending else next(stored)
                         for i in ids], dtype=np.float32).reshape(len(ids), self.dim)

    def describe(self) -> str:
        """Recorded in the catalog as `vector_index`, like the local index's kind."""
        return f"milvus {self.collection.params.describe()}"

    def commit(self, generation: int) -> None:
        """Step 1: insert the new vectors with their chunks' metadata (still invisible)."""
        self._generation = generation
        if not self._pending:
            return
        ids = np.array(sorted(self._pending), dtype=np.int64)
        metas: dict[int, str] = {}
        for part, marks in in_batches(ids.tolist()):
            metas.update(self._conn.execute(
                f"SELECT id, meta FROM chunks WHERE id IN ({marks})", part).fetchall())
        ts = self.collection.insert(ids, np.stack([self._pending[i] for i in ids.tolist()]),
                                    [json.loads(metas[i]) for i in ids.tolist()])
        add_unsealed(self._conn, len(ids), self.collection)
        record_ts(self._conn, ts)  # in the catalog's transaction: snapshots read past it
        self._pending.clear()


class MilvusWriter(LocalWriter):
    """`LocalWriter` with `MilvusVectors`; after each commit, step 3 (tombstone purge)."""

    def __init__(self, files: GenerationFiles, conn: sqlite3.Connection,
                 collection: MilvusCollection, oldest_reader: Callable[[], int | None]) -> None:
        self._collection = collection
        self._oldest_reader = oldest_reader
        super().__init__(files, conn)
        self._collect_orphans()

    def _vectors(self) -> MilvusVectors:  # type: ignore[override]
        if self._vecs is None:
            if "dim" not in self._info:
                raise RaglineError("set_info(dim=...) must come before the first vectors")
            self._vecs = MilvusVectors(  # type: ignore[assignment]
                self._collection, self._conn, int(self._info["dim"]), self._generation)
        return self._vecs  # type: ignore[return-value]

    def _collect_orphans(self) -> None:
        """Vectors a killed writer inserted but never committed, and its tombstones."""
        if "dim" not in self._info:
            return
        if not self._collection.exists():
            if self._next_id > 0:  # writing now would leave the committed chunks vectorless
                raise MilvusFailure(f"{self._collection.where} is gone (dropped?) but the "
                                    "catalog lists chunks stored there; refusing to write "
                                    "(ingest into a new index folder)")
            return
        orphans = f"id > {self._next_id}"
        if self._collection.count(orphans):
            self._collection.delete(orphans)
            # deleted rows still fill their growing segment toward the interim index, and
            # the killed writer never counted them as unsealed
            self._collection.settle()
        self._purge()

    def _purge(self) -> None:
        """Tombstones no snapshot of this process still needs (older readers keep theirs),
        in a transaction of its own: called where the writer's open one is still empty."""
        oldest = self._oldest_reader()
        upto = self._generation if oldest is None else min(oldest, self._generation)
        self._conn.execute("ROLLBACK")
        try:
            purge_tombstones(self._conn, self._collection, upto)
        finally:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            self._conn.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        if not self._dirty:
            return
        super().commit()  # steps 1 and 2; leaves the next SQLite transaction open
        if self._committed is not None:
            self._committed = (None, self._committed[1])  # readers load no vector file
        self._purge()  # step 3
