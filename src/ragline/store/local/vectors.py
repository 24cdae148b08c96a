"""FAISS exact inner-product index with ids, saved as numbered generation files.

A commit writes `vectors.<gen>.faiss` beside the catalog (ragline.fsutil.atomic_write) and
never overwrites the file the catalog points at, so a process killed at any moment leaves the
last committed generation intact.
"""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

from ragline.fsutil import atomic_write
from ragline.store.base import check_vectors

# one query scans on one thread: with 2 OpenMP threads a 100k-chunk search took ~58 ms
# instead of ~13 ms on a busy 2-core machine (bench/search.py); set once, not per query,
# because faiss's thread count is process-wide state
_SINGLE = 1


def vectors_path(folder: Path, generation: int) -> Path:
    return Path(folder) / f"vectors.{generation}.faiss"


class FaissVectors:
    """In-memory FAISS `IndexIDMap2(IndexFlatIP)`, loaded from and saved to a folder."""

    def __init__(self, folder: Path, dim: int, generation: int = 0) -> None:
        self.folder = Path(folder)
        self.dim = dim
        self.generation = generation
        path = vectors_path(self.folder, generation)
        if generation > 0:
            if not path.exists():
                raise FileNotFoundError(f"vector index {path} is missing")
            index = faiss.read_index(str(path))
            if index.d != dim:
                raise ValueError(f"{path} holds dimension {index.d}, expected {dim}")
            self.index = index
        else:
            self.index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def ids(self) -> np.ndarray:
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
        return int(self.index.remove_ids(faiss.IDSelectorBatch(ids)))

    def get(self, ids: np.ndarray | list[int]) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64)
        out = np.empty((len(ids), self.dim), dtype=np.float32)
        for row, i in enumerate(ids):
            out[row] = self.index.reconstruct(int(i))
        return out

    def search(self, queries: np.ndarray, k: int,
               allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, ids) per query; with `allowed` (ids), only those are considered,
        inside the scan (an IDSelector), so a narrow filter still fills k when it can."""
        q = check_vectors(np.atleast_2d(queries), self.dim)
        n = q.shape[0]
        limit = len(self) if allowed is None else min(len(self), len(allowed))
        if limit == 0 or k <= 0:
            return np.zeros((n, 0), np.float32), np.zeros((n, 0), np.int64)
        params = None
        if allowed is not None:
            params = faiss.SearchParameters(
                sel=faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64)))
        if n == 1 and faiss.omp_get_max_threads() != _SINGLE:
            faiss.omp_set_num_threads(_SINGLE)
        scores, ids = self.index.search(q, min(k, limit), params=params)
        return scores, ids

    def commit(self, generation: int) -> None:
        """Write this state as a new generation file, durably; the catalog points to it next."""
        atomic_write(vectors_path(self.folder, generation),
                     lambda tmp: faiss.write_index(self.index, str(tmp)))
        self.generation = generation

    def disk_bytes(self) -> int:
        path = vectors_path(self.folder, self.generation)
        return path.stat().st_size if path.exists() else 0
