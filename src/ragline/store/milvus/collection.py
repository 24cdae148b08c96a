"""One Milvus collection holding an index's vectors and the metadata filters see.

Schema: `id` (INT64 primary key = the catalog's chunk id), `vector` (FLOAT_VECTOR), `meta`
(JSON: the chunk's metadata, what `expr.to_milvus` filters on). HNSW index over inner product,
Strong consistency for reads after a commit: a snapshot reads as of the Milvus timestamp of
its commit's last insert (`_after`), so it sees every vector its catalog lists. Every Milvus
failure becomes one `RaglineError` line naming the server and the collection.

Milvus searches rows not yet in an indexed sealed segment through its growing segments: exactly
up to ~5,000 rows a segment, past that through an interim IVF index built by the query node
(`queryNode.segcore.interimIndex`: nlist 128, nprobe 16, a server setting no search parameter
overrides). On SciFact's 10,135 chunks that index found 92% of the exact top 10 and 81% of
the top 200. So a writer `settle`s once `EXACT_TAIL` rows wait unsealed: seal, build HNSW,
and return once the query node serves them from their indexed segments.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ragline.errors import IndexMismatchError, RaglineError
from ragline.store.base import Run

#: Milvus's own caps: rows one search may return, ids one query page may hold
MAX_TOPK = 16384
_PAGE = 16384
_INSERT_ROWS = 5000  # ~8 MB of 384-d vectors per gRPC message (limit 64 MB)
#: unsealed rows a search still scans exactly: Milvus builds its interim IVF index on a growing
#: segment past max(39 x nlist, a share of the segment's capacity) rows, 4,992 at the default
#: nlist 128 (measured for 384-d: exact at 5,500 rows, recall@10 0.30 at 6,000 on random data)
EXACT_TAIL = 4096
#: dataCoord.segment.minSegmentNumRowsToEnableIndex: smaller segments get no index (scanned)
_INDEXED_FROM = 1024
_aliases = itertools.count()


@dataclass(frozen=True)
class HnswParams:
    """HNSW build and search settings (ef at search time; raised to k when k is larger)."""

    m: int = 16
    ef_construction: int = 200
    # bench/scale.py, 20k clustered 384-d vectors: recall@10 0.67 at ef=96, 0.88 at 200,
    # 0.98 at 400, p50 2-5 ms throughout
    ef: int = 256

    def describe(self) -> str:
        return f"HNSW (M={self.m}, efConstruction={self.ef_construction}, ef={self.ef})"


class MilvusFailure(RaglineError):
    """Milvus could not be reached or refused a request."""


@contextlib.contextmanager
def _errors(what: str) -> Iterator[None]:
    """Turn pymilvus exceptions into one line: what we tried, where, and Milvus's reason."""
    from pymilvus.exceptions import MilvusException

    try:
        yield
    except MilvusException as e:
        reason = " ".join(str(getattr(e, "message", "") or e).split())
        if "collection not found" in reason.lower():
            reason += " (was the collection dropped? the catalog still refers to it)"
        raise MilvusFailure(f"{what}: {reason}") from None


def _after(ts: int) -> dict[str, Any]:
    """Read at least as new as `ts`: what a committed snapshot needs, without Strong's wait
    for the next time tick (~200 ms a search on this server) when `ts` is long reached."""
    if ts <= 0:
        return {"consistency_level": "Strong"}
    return {"consistency_level": "Customized", "guarantee_timestamp": ts}


class MilvusCollection:
    """A connection to `host:port` and the collection `name` on it (created on `ensure`)."""

    def __init__(self, host: str, port: int, name: str = "", owner: str = "",
                 params: HnswParams | None = None, timeout: float = 10.0) -> None:
        from pymilvus import connections

        self.host, self.port, self.name, self.owner = host, port, name, owner
        self.params = params or HnswParams()
        self.settle_timeout = 3600.0  # seal + HNSW build + load; minutes at 250k rows
        self.alias = f"ragline-{os.getpid()}-{next(_aliases)}"
        self._collection: Any = None
        with _errors(f"cannot reach Milvus at {host}:{port}"):
            connections.connect(self.alias, host=host, port=str(port), timeout=timeout)

    @property
    def where(self) -> str:
        return f"Milvus collection {self.name!r} at {self.host}:{self.port}"

    def close(self) -> None:
        from pymilvus import connections

        with contextlib.suppress(Exception):
            connections.disconnect(self.alias)

    # schema ---------------------------------------------------------------------------------
    def exists(self) -> bool:
        from pymilvus import utility

        with _errors(f"cannot reach Milvus at {self.host}:{self.port}"):
            return bool(utility.has_collection(self.name, using=self.alias))

    def _handle(self) -> Any:
        """The loaded collection; an error line if it was dropped under us."""
        if self._collection is None:
            from pymilvus import Collection

            if not self.exists():
                raise MilvusFailure(f"{self.where} does not exist (dropped?); the index "
                                    "folder's catalog still refers to it")
            with _errors(f"cannot open {self.where}"):
                coll = Collection(self.name, using=self.alias)
                coll.load()
            self._collection = coll
        return self._collection

    def dim(self) -> int | None:
        """The vector dimension of the existing collection, or None if there is none."""
        if not self.exists():
            return None
        fields = {f.name: f for f in self._handle().schema.fields}
        return int(fields["vector"].params["dim"])

    def ensure(self, dim: int) -> None:
        """Create the collection (schema, HNSW index, loaded) or check the existing one."""
        from pymilvus import Collection, CollectionSchema, DataType, FieldSchema

        if self.exists():
            coll = self._handle()
            have = self.dim()
            if have != dim:
                raise IndexMismatchError(
                    f"{self.where} holds vectors of dimension {have}, the index {dim}; "
                    "refusing to write (use another collection)")
            if coll.description != self.owner:
                raise IndexMismatchError(
                    f"{self.where} belongs to another index ({coll.description!r}); "
                    "refusing to write (name another collection in the URL)")
            return
        fields = [FieldSchema("id", DataType.INT64, is_primary=True),
                  FieldSchema("vector", DataType.FLOAT_VECTOR, dim=dim),
                  FieldSchema("meta", DataType.JSON)]
        with _errors(f"cannot create {self.where}"):
            coll = Collection(self.name, CollectionSchema(fields, description=self.owner),
                              using=self.alias, consistency_level="Strong")
            coll.create_index("vector", {"index_type": "HNSW", "metric_type": "IP", "params": {
                "M": self.params.m, "efConstruction": self.params.ef_construction}})
            coll.load()
        self._collection = coll

    def drop(self) -> None:
        from pymilvus import utility

        with _errors(f"cannot drop {self.where}"):
            utility.drop_collection(self.name, using=self.alias)
        self._collection = None

    # data -----------------------------------------------------------------------------------
    def insert(self, ids: np.ndarray, vectors: np.ndarray, metas: Sequence[Mapping[str, Any]]
               ) -> int:
        """Insert rows; returns the Milvus timestamp a read must wait for to see them all."""
        coll = self._handle()
        ts = 0
        with _errors(f"cannot insert into {self.where}"):
            for i in range(0, len(ids), _INSERT_ROWS):
                part = slice(i, i + _INSERT_ROWS)
                done = coll.insert([ids[part].tolist(), vectors[part], list(metas[part])])
                ts = max(ts, int(done.timestamp))
        return ts

    def settle(self) -> None:
        """Seal the growing segments and return once every row is served from a sealed
        segment searched by its HNSW index (or scanned, if too small to get one): only then
        do searches stop going through the interim IVF index (see the module doc)."""
        from pymilvus import utility

        coll = self._handle()
        deadline = time.monotonic() + self.settle_timeout
        with _errors(f"cannot seal and index {self.where}"):
            coll.flush(timeout=self.settle_timeout)
            if not utility.wait_for_index_building_complete(
                    self.name, timeout=int(self.settle_timeout), using=self.alias):
                raise MilvusFailure(f"{self.where}: building its HNSW index failed (see the "
                                    "server's index node log)")
            delay = 0.05
            while not self._served():  # the query coordinator hands sealed segments over
                if time.monotonic() > deadline:  # every few seconds
                    raise MilvusFailure(f"{self.where}: its query node did not load the "
                                        f"indexed segments in {self.settle_timeout:.0f} s")
                time.sleep(delay)
                delay = min(delay * 2, 0.5)

    def _served(self) -> bool:
        """Every flushed row is loaded in a sealed segment, and each one big enough to be
        indexed is searched through its index (not growing, not the interim index)."""
        from pymilvus import utility

        total = utility.index_building_progress(self.name, using=self.alias)["total_rows"]
        loaded = utility.get_query_segment_info(self.name, using=self.alias)
        return (sum(s.num_rows for s in loaded) == int(total)
                and all(s.index_name or s.num_rows < _INDEXED_FROM for s in loaded))

    def delete(self, expr: str) -> None:
        """Delete what `expr` selects, and return once every later read sees it gone.

        Milvus 2.3 returns no timestamp for a delete, so a read at an older commit's
        timestamp could still find the rows; a Strong read waits until the query nodes
        have applied everything before it, the delete included (a barrier, ~1 time tick)."""
        with _errors(f"cannot delete from {self.where}"):
            handle = self._handle()
            handle.delete(expr, consistency_level="Strong")
            handle.query("id < 0", output_fields=["id"], consistency_level="Strong")

    def delete_ids(self, ids: Sequence[int]) -> None:
        for i in range(0, len(ids), _PAGE):
            self.delete(f"id in {json.dumps([int(x) for x in ids[i : i + _PAGE]])}")

    def count(self, expr: str) -> int:
        """Rows `expr` selects, as of now (Strong)."""
        with _errors(f"cannot read {self.where}"):
            rows = self._handle().query(expr, output_fields=["count(*)"],
                                        consistency_level="Strong")
        return int(rows[0]["count(*)"])

    def ids(self, upto: int, ts: int = 0) -> np.ndarray:
        """Every id in [1, upto], ascending (paged by id range: ids are unique)."""
        out: list[int] = []
        coll = self._handle()
        with _errors(f"cannot read {self.where}"):
            for low in range(0, upto, _PAGE):
                rows = coll.query(f"id > {low} and id <= {min(low + _PAGE, upto)}",
                                  output_fields=["id"], **_after(ts))
                out.extend(int(r["id"]) for r in rows)
        return np.array(sorted(out), dtype=np.int64)

    def vectors(self, ids: Sequence[int], dim: int, ts: int = 0) -> np.ndarray:
        """Stored vectors for `ids`, in order (zeros where an id is absent)."""
        found: dict[int, Any] = {}
        coll = self._handle()
        with _errors(f"cannot read {self.where}"):
            for i in range(0, len(ids), 1000):
                part = [int(x) for x in ids[i : i + 1000]]
                for row in coll.query(f"id in {json.dumps(part)}", output_fields=["vector"],
                                      **_after(ts)):
                    found[int(row["id"])] = row["vector"]
        out = np.zeros((len(ids), dim), dtype=np.float32)
        for row, i in enumerate(ids):
            if int(i) in found:
                out[row] = np.asarray(found[int(i)], dtype=np.float32)
        return out

    def search(self, queries: np.ndarray, k: int, expr: str, ts: int = 0,
               share: float = 1.0) -> list[Run]:
        """Top-k by inner product per query row among the rows `expr` keeps (a `share` of
        the collection), as of Milvus timestamp `ts` at least (0: Strong, the newest).
        A filter widens ef by 1 / share: HNSW walks past what the filter drops."""
        k = min(k, MAX_TOPK)
        ef = min(MAX_TOPK, math.ceil(self.params.ef / max(share, 1e-3)))
        param = {"metric_type": "IP", "params": {"ef": max(ef, k)}}
        with _errors(f"cannot search {self.where}"):
            results = self._handle().search(
                np.ascontiguousarray(queries, dtype=np.float32), "vector", param, limit=k,
                expr=expr, **_after(ts))
        return [(np.asarray(hits.ids, dtype=np.int64),
                 np.asarray(hits.distances, dtype=np.float32)) for hits in results]
