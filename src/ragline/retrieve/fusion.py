"""Fusing ranked lists: small pure functions, picked by name.

Each takes a list of (ids, scores) runs, best first, and returns (ids, fused scores), best first.
Ties are broken by id so results are deterministic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

Run = tuple[np.ndarray, np.ndarray]


def _ranked(scores: dict[int, float]) -> Run:
    if not scores:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    ids = np.fromiter(scores, dtype=np.int64, count=len(scores))
    vals = np.fromiter(scores.values(), dtype=np.float64, count=len(scores))
    order = np.lexsort((ids, -vals))
    return ids[order], vals[order].astype(np.float32)


def _weights(n: int, weights: Sequence[float] | None) -> list[float]:
    if weights is None:
        return [1.0] * n
    if len(weights) != n:
        raise ValueError(f"{len(weights)} weights for {n} runs")
    return [float(w) for w in weights]


def rrf(runs: Sequence[Run], k: float = 60.0, weights: Sequence[float] | None = None) -> Run:
    """Reciprocal-rank fusion: sum of w / (k + rank), rank starting at 1 (Cormack et al. 2009)."""
    out: dict[int, float] = {}
    for (ids, _), w in zip(runs, _weights(len(runs), weights), strict=True):
        for rank, i in enumerate(ids.tolist(), start=1):
            out[i] = out.get(i, 0.0) + w / (k + rank)
    return _ranked(out)


def normalise(scores: np.ndarray, method: str = "minmax") -> np.ndarray:
    """Put one run's scores on a common scale: `minmax` to [0, 1], or `zscore`."""
    s = np.asarray(scores, dtype=np.float64)
    if not len(s):
        return s
    if method == "minmax":
        span = s.max() - s.min()
        return (s - s.min()) / span if span > 0 else np.ones_like(s)
    if method == "zscore":
        sd = s.std()
        return (s - s.mean()) / sd if sd > 0 else np.zeros_like(s)
    raise ValueError(f"unknown normalisation {method!r}")


def weighted(runs: Sequence[Run], weights: Sequence[float] | None = None,
             norm: str = "minmax") -> Run:
    """Convex combination of normalised scores; a missing item counts as the run's minimum.

    In numpy over the union of ids (sorted, so `searchsorted` places each run): the default
    hybrid search runs this on ~400 candidates per query, ~1 ms as Python dict loops."""
    ws = _weights(len(runs), weights)
    ids_all = [np.asarray(ids, dtype=np.int64) for ids, _ in runs]
    union = np.unique(np.concatenate(ids_all)) if ids_all else np.zeros(0, np.int64)
    if not len(union):
        return union, np.zeros(0, dtype=np.float32)
    total = np.zeros(len(union), dtype=np.float64)
    for ids, (_, scores), w in zip(ids_all, runs, ws, strict=True):
        n = normalise(scores, norm)
        column = np.full(len(union), float(n.min()) if len(n) else 0.0)
        column[np.searchsorted(union, ids)] = n
        total += w * column
    order = np.lexsort((union, -total))
    return union[order], total[order].astype(np.float32)


FUSIONS: dict[str, Callable[..., Run]] = {"rrf": rrf, "weighted": weighted}


def fuse(name: str, runs: Sequence[Run], **params: object) -> Run:
    """Fuse with the method called `name` ("rrf" or "weighted")."""
    try:
        method = FUSIONS[name]
    except KeyError:
        raise ValueError(f"unknown fusion {name!r}: use one of {', '.join(FUSIONS)}") from None
    return method(runs, **params)


def aggregate(ids: np.ndarray, scores: np.ndarray, groups: dict[int, str],
              how: str = "max") -> list[tuple[str, float]]:
    """Chunk scores to document scores (`max` or `sum`), best first."""
    out: dict[str, float] = {}
    for i, s in zip(ids.tolist(), scores.tolist(), strict=True):
        g = groups.get(i)
        if g is None:
            continue
        if how == "max":
            if g not in out or s > out[g]:
                out[g] = s
        elif how == "sum":
            out[g] = out.get(g, 0.0) + s
        else:
            raise ValueError(f"unknown aggregation {how!r}")
    return sorted(out.items(), key=lambda kv: (-kv[1], kv[0]))
