"""The Milvus store: the local store's catalog and BM25 files in the index folder, the vectors
and the metadata filters see in a Milvus collection (HNSW; each snapshot reads Milvus as of
the timestamp its commit recorded: Strong consistency for reads after a commit, without
waiting for Milvus's next time tick on every search).

It is the local store with another vector side: `LocalStore` keeps the folder, the lock, the
SQLite snapshots and the BM25 generation files; this replaces the FAISS file with a collection
and the writer's commit with the ordered one of `writer.py`. A snapshot searches Milvus with
`id <= next_id` and `id not in tombstones` of its catalog, so it returns only chunks its
catalog holds, whatever a concurrent or killed writer left in the collection.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ragline.errors import RaglineError
from ragline.store.base import Run, empty_run
from ragline.store.filters import Filter
from ragline.store.lexical import Bm25Settings
from ragline.store.local.catalog import SCHEMA_VERSION, Catalog
from ragline.store.local.files import GenerationFiles
from ragline.store.local.reader import LocalReader
from ragline.store.local.store import LocalStore
from ragline.store.milvus.collection import HnswParams, MilvusCollection
from ragline.store.milvus.expr import to_milvus
from ragline.store.milvus.url import MilvusLocation, parse
from ragline.store.milvus.writer import MILVUS_SCHEMA, MilvusWriter, read_ts, tombstones


class MilvusReader(LocalReader):
    """A snapshot: SQLite rows and BM25 of one generation; Milvus limited to its chunks."""

    def __init__(self, files: GenerationFiles, catalog: Catalog, info: dict[str, str],
                 generation: int, lexical: Any, collection: MilvusCollection,
                 hidden: Sequence[int], ts: int) -> None:
        super().__init__(files, catalog, info, generation, None, lexical)
        self._collection = collection
        self._ts = ts
        self._hidden = list(hidden)
        self._high = int(info.get("next_id", 0))

    def _visible(self) -> str:
        """The snapshot's chunks: committed ids, less those deleted by its commit."""
        expr = f"id <= {self._high}"
        return f"{expr} and id not in {self._hidden}" if self._hidden else expr

    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        return self._collection.vectors(list(ids), int(self._info["dim"]), self._ts)

    def vector_ids(self) -> list[int]:
        if "dim" not in self._info:
            return []
        hidden = set(self._hidden)
        return [i for i in self._collection.ids(self._high, self._ts).tolist()
                if i not in hidden]

    def dense_search(self, queries: np.ndarray, k: int,
                     where: Filter | None = None) -> list[Run]:
        q = np.atleast_2d(queries)
        expr, share = self._visible(), 1.0
        if where is not None:
            expr = f"({expr}) and {to_milvus(where, self.fields())}"
        if "dim" not in self._info or k <= 0 or self._high == 0:
            return [empty_run() for _ in range(len(q))]
        if where is not None:  # the filter's share, from the catalog (cached per commit)
            kept = self._files.allowed_ids(self._generation, where, self._catalog)
            share = len(kept) / max(self.counts()[1], 1)
            if not len(kept):
                return [empty_run() for _ in range(len(q))]
        return self._collection.search(q, k, expr, self._ts, share)

    def stats(self) -> dict[str, object]:
        files = [f for f in self._files.folder.iterdir() if f.is_file()]
        c = self._collection
        return {"store": f"milvus (vectors in {c.where}; catalog and BM25 in the folder)",
                "vectors": self.counts()[1], "generation": self._generation,
                "schema": self._info.get("schema", SCHEMA_VERSION),
                "vector_index": f"milvus {c.params.describe()}",
                "pending_deletes": len(self._hidden),
                "disk_bytes": sum(f.stat().st_size for f in files)}


class MilvusStore(LocalStore):
    """`milvus://host:port[/collection]?index=FOLDER` (see `url.py`)."""

    _vector_files = False

    def __init__(self, url: str, folder: str | Path | None = None,
                 lexical: Bm25Settings | None = None, params: HnswParams | None = None,
                 timeout: float = 10.0) -> None:
        where = parse(url)
        folder = Path(folder) if folder is not None else where.folder
        if folder is None:
            raise RaglineError(f"{url}: a Milvus store keeps its catalog in an index folder: "
                               "add --index DIR (or ?index=DIR to the URL)")
        # Milvus first: an unreachable server is one error line, before the folder is touched
        self.collection = MilvusCollection(where.host, where.port, params=params,
                                           timeout=timeout)
        super().__init__(folder, lexical)
        self._live: Counter[int] = Counter()
        self._live_lock = threading.Lock()
        try:
            name, owner = self._bind(where.collection)
        except BaseException:
            self.close()
            raise
        self.collection.name, self.collection.owner = name, owner
        self.location = MilvusLocation(where.host, where.port, name,
                                       self.folder.resolve()).url()

    def _bind(self, wanted: str | None) -> tuple[str, str]:
        """The folder's collection name and owner tag, recorded at its first open."""
        conn = self._conn()
        try:
            conn.executescript(MILVUS_SCHEMA)
            conn.execute("BEGIN IMMEDIATE")
            state = dict(conn.execute("SELECT key, value FROM milvus_state").fetchall())
            if "collection" not in state:
                tag = uuid.uuid4().hex[:12]
                state = {"collection": wanted or f"ragline_{tag}", "owner": f"ragline:{tag}"}
                conn.executemany("INSERT INTO milvus_state(key, value) VALUES (?, ?)",
                                 state.items())
            conn.execute("COMMIT")
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self._release(conn)
        if wanted is not None and wanted != state["collection"]:
            raise RaglineError(f"{self.folder} keeps its vectors in Milvus collection "
                               f"{state['collection']!r}, not {wanted!r}")
        return state["collection"], state["owner"]

    def close(self) -> None:
        super().close()
        self.collection.close()

    def _oldest_reader(self) -> int | None:
        with self._live_lock:
            return min(self._live) if self._live else None

    @contextlib.contextmanager
    def _reader(self, catalog: Catalog, info: dict[str, str], generation: int,
                handles: tuple[Any, Any]) -> Iterator[MilvusReader]:
        with self._live_lock:
            self._live[generation] += 1
        try:
            yield MilvusReader(self.files, catalog, info, generation, handles[1],
                               self.collection, tombstones(catalog.conn),
                               read_ts(catalog.conn))
        finally:
            with self._live_lock:
                self._live[generation] -= 1
                if not self._live[generation]:
                    del self._live[generation]

    def _writer(self, conn: sqlite3.Connection) -> MilvusWriter:
        return MilvusWriter(self.files, conn, self.collection, self._oldest_reader)
