"""Filtered search: the ids a filter keeps, found once per commit and cached by the store.

A filter is a condition on each chunk's JSON metadata; PostgreSQL evaluates it at ~1 us a row
(~95 ms for 100k chunks), far more than the searches themselves. The ids it keeps depend on
the committed chunks alone, so they are cached under `lexical_stats.stamp`, which every
commit sets anew: a reader whose snapshot shows the same stamp sees the same chunks.

With the ids at hand, dense search is exact over the rows they name (a primary-key scan,
~1.1 us a row: 1 ms for 1k, 11 ms for 10k), where HNSW's filtered walk found 0.44-0.74 of the
true top 10 at 100k chunks. Past `EXACT_MAX` rows HNSW walks wider (ef_search 400, re-sorted
here: recall@10 0.96-0.99 for filters keeping 30-90% of 100k chunks, 17-39 ms), which does
not grow with the rows kept. BM25 scores every chunk anyway: the filter is a mask of its ids.
"""

from __future__ import annotations

import struct
import threading
from collections import OrderedDict
from typing import Any

import numpy as np
import psycopg
from psycopg.adapt import Dumper
from psycopg.pq import Format

#: filters keeping at most this many chunks are searched exactly (~22 ms at 384-d)
EXACT_MAX = 20_000
#: hnsw.ef_search and rows fetched for a filter keeping more (at least k)
FILTERED_EF = 400
#: the cache's bound: entries, and bytes of ids (8 per kept chunk)
CACHE_ENTRIES, CACHE_BYTES = 32, 64 << 20
_STAMP = "SELECT stamp FROM lexical_stats"


class KeptCache:
    """Ids kept by a filter per (commit stamp, condition): least recently used go first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple[Any, ...], np.ndarray] = OrderedDict()

    def ids(self, conn: psycopg.Connection[Any], cond: tuple[str, list[Any]],
            stamp: int) -> np.ndarray:
        """Sorted ids of the chunks `cond` (on `c.meta`) keeps, in `conn`'s snapshot, whose
        lexical_stats.stamp is `stamp`."""
        key = (stamp, cond[0], *(repr(v) for v in cond[1]))
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                return found
        (packed,) = conn.cursor(binary=True).execute(
            f"SELECT string_agg(int8send(c.id), ''::bytea) FROM chunks c WHERE {cond[0]}",
            cond[1]).fetchone() or (None,)  # type: ignore[arg-type]
        ids = np.sort(np.frombuffer(packed or b"", ">i8").astype(np.int64))
        with self._lock:
            self._items[key] = ids
            total = sum(v.nbytes for v in self._items.values())
            while len(self._items) > CACHE_ENTRIES or (total > CACHE_BYTES
                                                       and len(self._items) > 1):
                total -= self._items.popitem(last=False)[1].nbytes
        return ids


def stamp(conn: psycopg.Connection[Any]) -> int:
    """The commit stamp of `conn`'s snapshot."""
    row = conn.execute(_STAMP).fetchone()
    return int(row[0]) if row else 0


def kept_mask(ids: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """Which of `ids` are in `kept` (both sorted): one binary search each."""
    if not len(kept):
        return np.zeros(len(ids), dtype=bool)
    at = np.minimum(np.searchsorted(kept, ids), len(kept) - 1)
    return kept[at] == ids


class IdArray:
    """int64 ids for a query parameter, sent as a binary int8[] (`IdArrayDumper`): no
    Python int per element."""

    def __init__(self, ids: np.ndarray) -> None:
        self.ids = ids


class IdArrayDumper(Dumper):
    """Dumps an `IdArray` in int8[]'s binary format (1 dimension, no NULLs)."""

    format = Format.BINARY
    oid = 1016  # int8[]

    def dump(self, obj: IdArray) -> bytes:
        n = len(obj.ids)
        if not n:
            return struct.pack(">iii", 0, 0, 20)
        items = np.empty(n, dtype=[("size", ">i4"), ("value", ">i8")])
        items["size"] = 8
        items["value"] = obj.ids
        return struct.pack(">iiiii", 1, 0, 20, n, 1) + items.tobytes()
