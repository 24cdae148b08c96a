"""FAISS exact inner-product index with ids, saved as numbered generation files.

A commit writes `vectors.<gen>.faiss` beside the catalog (temp file, fsync, rename, fsync of
the folder) and never overwrites the file the catalog points at, so a process killed at any
moment leaves the last committed generation intact. Files of other generations are garbage.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import faiss
import numpy as np

from ragline.store.base import check_vectors

_GEN_FILE = re.compile(r"^vectors\.(\d+)\.faiss(\.tmp)?$")


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FaissStore:
    """In-memory FAISS `IndexIDMap2(IndexFlatIP)`, loaded from and saved to a folder."""

    def __init__(self, folder: Path, dim: int, generation: int = 0) -> None:
        self.folder = Path(folder)
        self.dim = dim
        self.generation = generation
        path = self.path_for(generation)
        if generation > 0 and path.exists():
            index = faiss.read_index(str(path))
            if index.d != dim:
                raise ValueError(f"{path} holds dimension {index.d}, expected {dim}")
            self.index = index
        elif generation > 0:
            raise FileNotFoundError(f"vector index {path} is missing")
        else:
            self.index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))

    def path_for(self, generation: int) -> Path:
        return self.folder / f"vectors.{generation}.faiss"

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def ids(self) -> np.ndarray:
        return faiss.vector_to_array(self.index.id_map).astype(np.int64)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        arr = check_vectors(vectors, self.dim, ids)
        if len(np.unique(ids)) != len(ids):
            raise ValueError("the same id appears twice in one add")
        if len(ids) and np.isin(ids, self.ids()).any():
            raise ValueError("some ids are already in the index")
        self.index.add_with_ids(arr, ids)

    def remove(self, ids: np.ndarray) -> int:
        ids = np.asarray(ids, dtype=np.int64)
        if not len(ids):
            return 0
        return int(self.index.remove_ids(faiss.IDSelectorBatch(ids)))

    def get(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64)
        out = np.empty((len(ids), self.dim), dtype=np.float32)
        for row, i in enumerate(ids):
            out[row] = self.index.reconstruct(int(i))
        return out

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        q = check_vectors(np.atleast_2d(queries), self.dim)
        if len(self) == 0 or k <= 0:
            n = q.shape[0]
            return np.zeros((n, 0), np.float32), np.zeros((n, 0), np.int64)
        if q.shape[0] > 1:
            scores, ids = self.index.search(q, min(k, len(self)))
            return scores, ids
        # one query scans on one thread: with 2 OpenMP threads a 100k-chunk search took
        # ~58 ms instead of ~13 ms on a busy 2-core machine (bench/search.py)
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            scores, ids = self.index.search(q, min(k, len(self)))
        finally:
            faiss.omp_set_num_threads(threads)
        return scores, ids

    def commit(self, generation: int) -> None:
        """Write this state as a new generation file, durably; the catalog points to it next."""
        target = self.path_for(generation)
        tmp = target.with_name(target.name + ".tmp")
        faiss.write_index(self.index, str(tmp))
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
        fsync_dir(self.folder)
        self.generation = generation

    def collect_garbage(self, keep: int) -> None:
        """Delete generation files other than `keep` (left by crashes or earlier commits)."""
        for entry in self.folder.iterdir():
            m = _GEN_FILE.match(entry.name)
            if m and (int(m.group(1)) != keep or m.group(2)):
                entry.unlink(missing_ok=True)

    def disk_bytes(self) -> int:
        path = self.path_for(self.generation)
        return path.stat().st_size if path.exists() else 0
