"""FAISS inner-product index with ids, saved as numbered generation files.

Exact (`IndexIDMap2(IndexFlatIP)`) until the corpus passes the ANN threshold, then an IVF-Flat
built from it (`ann.py`, where the choice is measured). A commit writes `vectors.<gen>.faiss`
beside the catalog (ragline.fsutil.atomic_write) and never overwrites the file the catalog
points at, so a process killed at any moment leaves the last committed generation intact.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import faiss
import numpy as np

from ragline.fsutil import atomic_write
from ragline.store.base import check_vectors
from ragline.store.local.ann import (
    ANN_THRESHOLD,
    AnnInfo,
    build_ivf,
    ivf_ids,
    ivf_search,
    needs_build,
)

# one query scans on one thread: with 2 OpenMP threads a 100k-chunk search took ~58 ms
# instead of ~13 ms on a busy 2-core machine (bench/search.py); set once, not per query,
# because faiss's thread count is process-wide state
_SINGLE = 1
EXACT_LABEL = "exact (FAISS IndexFlatIP)"


def vectors_path(folder: Path, generation: int) -> Path:
    return Path(folder) / f"vectors.{generation}.faiss"


def read_index(source: Path | BinaryIO) -> faiss.Index:
    """A saved index from a path or an open file, streamed (no second copy in memory); an
    IVF gets its id -> entry map back, which reconstruct and remove need."""
    if isinstance(source, Path):
        index = faiss.read_index(str(source))
    else:
        index = faiss.read_index(faiss.PyCallbackIOReader(source.read))
    if isinstance(index, faiss.IndexIVF) and \
            index.direct_map.type != faiss.DirectMap.Hashtable:
        index.set_direct_map_type(faiss.DirectMap.Hashtable)
    return index


class FaissVectors:
    """In-memory FAISS index (exact, or IVF past `ann_threshold`), loaded from and saved to a
    folder."""

    def __init__(self, folder: Path, dim: int, generation: int = 0,
                 ann_threshold: int = ANN_THRESHOLD) -> None:
        self.folder = Path(folder)
        self.dim = dim
        self.generation = generation
        self.ann_threshold = ann_threshold
        self.ann: AnnInfo | None = None  # set when this object built the IVF
        path = vectors_path(self.folder, generation)
        if generation > 0:
            if not path.exists():
                raise FileNotFoundError(f"vector index {path} is missing")
            self.set_index(read_index(path), str(path))
        else:
            self.index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))

    def set_index(self, index: faiss.Index, where: str) -> None:
        if index.d != self.dim:
            raise ValueError(f"{where} holds dimension {index.d}, expected {self.dim}")
        self.index = index

    @property
    def approximate(self) -> bool:
        return isinstance(self.index, faiss.IndexIVF)

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def ids(self) -> np.ndarray:
        if self.approximate:
            return ivf_ids(self.index)
        return faiss.vector_to_array(self.index.id_map).astype(np.int64)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        arr = check_vectors(vectors, self.dim, len(ids))
        if len(np.unique(ids)) != len(ids):
            raise ValueError("the same id appears twice in one add")
        if len(ids) and np.isin(ids, self.ids()).any():
            raise ValueError("some ids are already in the index")
        self.index.add_with_ids(arr, ids)

    def remove(self, ids: np.ndarray | list[int]) -> int:
        ids = np.asarray(ids, dtype=np.int64)
        if not len(ids):
            return 0
        # an IVF's id map (a hashtable) removes from an id array only
        sel = faiss.IDSelectorArray(ids) if self.approximate else faiss.IDSelectorBatch(ids)
        return int(self.index.remove_ids(sel))

    def get(self, ids: np.ndarray | list[int]) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64)
        if not len(ids):
            return np.zeros((0, self.dim), dtype=np.float32)
        return self.index.reconstruct_batch(ids).reshape(len(ids), self.dim)

    def search(self, queries: np.ndarray, k: int,
               allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, ids) per query; with `allowed` (ids), only those are considered,
        inside the scan (an IDSelector), so a narrow filter still fills k when it can."""
        q = check_vectors(np.atleast_2d(queries), self.dim)
        n = q.shape[0]
        limit = len(self) if allowed is None else min(len(self), len(allowed))
        if limit == 0 or k <= 0:
            return np.zeros((n, 0), np.float32), np.zeros((n, 0), np.int64)
        if n == 1 and faiss.omp_get_max_threads() != _SINGLE:
            faiss.omp_set_num_threads(_SINGLE)
        if self.approximate:
            return ivf_search(self.index, q, min(k, limit), allowed)
        params = None
        if allowed is not None:
            params = faiss.SearchParameters(
                sel=faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64)))
        scores, ids = self.index.search(q, min(k, limit), params=params)
        return scores, ids

    def describe(self) -> str:
        """The index kind and its parameters, as recorded in the catalog."""
        if self.ann is not None:
            return self.ann.describe()
        if self.approximate:
            return f"ivf (FAISS IVF-Flat, nlist={self.index.nlist}, nprobe={self.index.nprobe})"
        return EXACT_LABEL

    def maybe_build_ann(self) -> bool:
        """Past the threshold, replace the exact index with an IVF built from it; rebuild
        the IVF when the corpus has outgrown it (`ann.needs_build`)."""
        if not needs_build(self.index, self.ann_threshold):
            return False
        self.index, self.ann = build_ivf(self.index)
        return True

    def commit(self, generation: int) -> None:
        """Write this state as a new generation file, durably; the catalog points to it next."""
        self.maybe_build_ann()
        atomic_write(vectors_path(self.folder, generation),
                     lambda tmp: faiss.write_index(self.index, str(tmp)))
        self.generation = generation

    def disk_bytes(self) -> int:
        path = vectors_path(self.folder, self.generation)
        return path.stat().st_size if path.exists() else 0
