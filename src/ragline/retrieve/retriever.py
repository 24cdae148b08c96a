"""Search over any store: embed the query, take both sides' candidates, fuse, fetch the text.

Each call takes its own store snapshot and returns its results and timings in what it returns,
so one `Retriever` serves many threads.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ragline.embed import Embedder
from ragline.errors import RaglineError
from ragline.retrieve import hybrid
from ragline.retrieve.fusion import Run
from ragline.store.base import IndexStore, StoreReader
from ragline.store.filters import Filter, parse_filter
from ragline.types import Hit, SearchResult

Where = str | Mapping[str, Any] | Filter | None


class Retriever:
    """Query-time search: modes "hybrid" (default), "dense" and "lexical", with filters."""

    def __init__(self, store: IndexStore, embedder: Embedder,
                 settings: hybrid.HybridSettings = hybrid.DEFAULT_SETTINGS) -> None:
        self.store = store
        self.embedder = embedder
        self.settings = settings

    def ranked(self, reader: StoreReader, query: str, depth: int, mode: str,
               where: Filter | None = None) -> tuple[Run, dict[str, float]]:
        """Chunk ids and scores, best first, with the time each stage took; `depth`
        candidates come from each side."""
        found = hybrid.candidates(reader, self.embedder, query, depth, mode, where)
        return hybrid.rank(found, mode, self.settings), found.timings

    def search(self, query: str, k: int = 5, mode: str = hybrid.DEFAULT_MODE,
               depth: int | None = None, where: Where = None) -> SearchResult:
        """Top-k chunks for `query` among those `where` keeps (a filter string or dict)."""
        return self.search_many([query], k, mode, depth, where)[0]

    def search_many(self, queries: Sequence[str], k: int = 5, mode: str = hybrid.DEFAULT_MODE,
                    depth: int | None = None, where: Where = None) -> list[SearchResult]:
        """`search` for many queries at once, in order: the queries are embedded in one
        batch and searched in one FAISS call, and all hits' text is read in one query."""
        for query in queries:
            if not query.strip():
                raise RaglineError("the query is empty")
        hybrid.check_mode(mode)
        condition = parse_filter(where)
        side = k if mode != "hybrid" else max(k, depth or self.settings.depth)
        with self.store.read() as reader:
            found = hybrid.candidates_many(reader, self.embedder, queries, side, mode, condition)
            ranked = []
            for c in found:
                ids, scores = hybrid.rank(c, mode, self.settings)
                ranked.append((ids[:k], scores[:k], c.timings))
            t0 = time.perf_counter()
            rows = reader.chunks(sorted({int(i) for ids, _, _ in ranked for i in ids}))
            fetch_ms = (time.perf_counter() - t0) * 1e3 / max(1, len(queries))
        out = []
        for query, (ids, scores, timings) in zip(queries, ranked, strict=True):
            timings["search_ms"] += fetch_ms
            out.append(SearchResult(query, self._hits(ids, scores, rows), timings))
        return out

    @staticmethod
    def _hits(ids: np.ndarray, scores: np.ndarray, rows: Mapping[int, Any]) -> list[Hit]:
        hits = []
        for score, vid in zip(scores.tolist(), ids.tolist(), strict=True):
            row = rows.get(int(vid))
            if row is None:
                continue
            hits.append(Hit(rank=len(hits) + 1, score=float(score), chunk_id=row.chunk_id,
                            source=row.source, page=row.page, heading=row.heading,
                            text=row.text, start=row.start, end=row.end,
                            metadata=dict(row.meta)))
        return hits
