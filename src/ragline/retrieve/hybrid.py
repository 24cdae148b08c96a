"""Dense + lexical candidates from one store snapshot, and how they are fused.

Works against the `StoreReader` protocol only, so every backend searches the same way and a
filter narrows both sides inside the store, before top-k.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from ragline.embed import Embedder
from ragline.retrieve.fusion import Run, fuse
from ragline.store.base import StoreReader, empty_run
from ragline.store.filters import Filter
from ragline.store.lexical import Bm25Settings

MODES = ("dense", "lexical", "hybrid")
DEFAULT_MODE = "hybrid"


@dataclass(frozen=True)
class HybridSettings:
    """Query-time settings of the default search.

    Chosen on SciFact's train qrels only (bench/retrieval.py --tune, one lever at a time):
    a convex combination of z-scored dense and BM25 scores with equal weights beat
    reciprocal-rank fusion (nDCG@10 0.735 vs 0.716 at k=60, 0.723 at the best k), and sits on
    a flat plateau (0.732-0.735 for dense weights 0.4-0.6), so equal weights need no tuning per
    collection. BM25 k1/b and title boosting moved nDCG by < 0.005 (standard 1.2/0.75 kept);
    pseudo-relevance feedback raised recall@100 but lowered nDCG@10, so it is not offered.
    """

    fusion: str = "weighted"  # or "rrf"
    rrf_k: float = 60.0
    weights: tuple[float, float] = (0.5, 0.5)  # dense, lexical
    norm: str = "zscore"
    depth: int = 200  # candidates taken from each side
    aggregate: str = "max"  # chunk scores to a document score (eval)
    bm25: Bm25Settings = field(default_factory=Bm25Settings)

    def fuse(self, dense: Run, lexical: Run) -> Run:
        if self.fusion == "rrf":
            return fuse("rrf", [dense, lexical], k=self.rrf_k, weights=self.weights)
        return fuse(self.fusion, [dense, lexical], weights=self.weights, norm=self.norm)


DEFAULT_SETTINGS = HybridSettings()


def check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"unknown search mode {mode!r}: use one of {', '.join(MODES)}")


@dataclass
class Candidates:
    """Both sides' top chunks for one query, with the time each took."""

    dense: Run
    lexical: Run
    timings: dict[str, float]


def candidates(reader: StoreReader, embedder: Embedder, query: str, depth: int, mode: str,
               where: Filter | None = None) -> Candidates:
    return candidates_many(reader, embedder, [query], depth, mode, where)[0]


def candidates_many(reader: StoreReader, embedder: Embedder, queries: Sequence[str],
                    depth: int, mode: str, where: Filter | None = None) -> list[Candidates]:
    """Both sides for many queries: one encoder batch and one FAISS call for all of them.
    Each query's timings are its share of the batched stages.

    BM25 goes first: in a cold process it runs while the encoder loads in the background
    (`ragline search` starts that), and the wait for the model stays out of `embed_ms`."""
    check_mode(mode)
    n = len(queries)
    dense = [empty_run() for _ in range(n)]
    lexical = [empty_run() for _ in range(n)]
    timings = [{"embed_ms": 0.0, "search_ms": 0.0} for _ in range(n)]
    if mode in ("lexical", "hybrid"):
        for i, query in enumerate(queries):
            t0 = time.perf_counter()
            lexical[i] = reader.lexical_search(query, depth, where)
            timings[i]["lexical_ms"] = (time.perf_counter() - t0) * 1e3
    if mode in ("dense", "hybrid") and n:
        embedder.warmup()
        t0 = time.perf_counter()
        qv = embedder.embed_query(queries[0])[None, :] if n == 1 else \
            embedder.embed_queries(queries)
        t1 = time.perf_counter()
        dense = reader.dense_search(qv, depth, where)
        t2 = time.perf_counter()
        for t in timings:
            t["embed_ms"], t["search_ms"] = (t1 - t0) * 1e3 / n, (t2 - t1) * 1e3 / n
    return [Candidates(d, x, t) for d, x, t in zip(dense, lexical, timings, strict=True)]


def rank(c: Candidates, mode: str, settings: HybridSettings) -> Run:
    """The final chunk ranking for a mode (fusion timed into the candidates' timings)."""
    if mode == "dense":
        return c.dense
    if mode == "lexical":
        return c.lexical
    t0 = time.perf_counter()
    out = settings.fuse(c.dense, c.lexical)
    c.timings["fusion_ms"] = (time.perf_counter() - t0) * 1e3
    return out
