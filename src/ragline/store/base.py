"""The vector store seam: every backend passes tests/store/test_conformance.py."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class VectorStore(Protocol):
    """Vectors keyed by int64 ids; changes become visible to other processes on `commit`."""

    dim: int

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add rows; refuses a wrong dimension or an id that is already present."""

    def remove(self, ids: np.ndarray) -> int:
        """Remove ids that exist; returns how many were removed."""

    def get(self, ids: np.ndarray) -> np.ndarray:
        """Return the stored vectors for ids, in order."""

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k inner-product scores and ids per query; missing slots have id -1."""

    def ids(self) -> np.ndarray: ...

    def __len__(self) -> int: ...

    def commit(self, generation: int) -> None:
        """Make the current state durable as `generation`."""


def check_vectors(vectors: np.ndarray, dim: int, ids: np.ndarray | None = None) -> np.ndarray:
    """Validate shape and dtype before anything is written; returns a contiguous float32 copy."""
    arr = np.ascontiguousarray(vectors, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise ValueError(f"vectors have shape {arr.shape}, the index holds dimension {dim}")
    if ids is not None and len(ids) != arr.shape[0]:
        raise ValueError(f"{len(ids)} ids for {arr.shape[0]} vectors")
    if not np.isfinite(arr).all():
        raise ValueError("vectors contain NaN or infinity")
    return arr
