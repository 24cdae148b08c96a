"""One Milvus collection holding an index's vectors and the metadata filters see.

Schema: `id` (INT64 primary key = the catalog's chunk id), `vector` (FLOAT_VECTOR), `meta`
(JSON: the chunk's metadata, what `expr.to_milvus` filters on). HNSW index over inner product,
Strong consistency for reads after a commit: a snapshot reads as of the Milvus timestamp of
its commit's last insert (`_after`), so it sees every vector its catalog lists. Every Milvus
failure becomes one `RaglineError` line naming the server and the collection.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
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
