"""Dense + lexical retrieval over one index, and the BM25 file kept in step with the catalog.

`Index` calls `sync_lexical` at every checkpoint (inside the catalog transaction, before the
commit) and `open_lexical` when a search needs BM25. The catalog is the source of truth: the
BM25 rows are matched to it by (chunk id, text hash), so whatever happened before (an older
index without a BM25 file, a crash between files) the lexical side ends up consistent.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ragline.retrieve.bm25 import (
    Bm25Index,
    Bm25Settings,
    collect_garbage,
    lexical_path,
    lexical_text,
)
from ragline.retrieve.fusion import Run, fuse

if TYPE_CHECKING:
    from ragline.index import Index

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
    pseudo-relevance feedback raised recall@100 but lowered nDCG@10, so it is off.
    """

    fusion: str = "weighted"  # or "rrf"
    rrf_k: float = 60.0
    weights: tuple[float, float] = (0.5, 0.5)  # dense, lexical
    norm: str = "zscore"
    depth: int = 200  # candidates taken from each side
    aggregate: str = "max"  # chunk scores to a document score (eval)
    # pseudo-relevance feedback: expand the BM25 query with the top terms of the first fused
    # ranking's best `prf_docs` chunks, then fuse again (0 = off)
    prf_docs: int = 0
    prf_terms: int = 10
    prf_weight: float = 0.5
    bm25: Bm25Settings = field(default_factory=Bm25Settings)

    def fuse(self, dense: Run, lexical: Run) -> Run:
        if self.fusion == "rrf":
            return fuse("rrf", [dense, lexical], k=self.rrf_k, weights=self.weights)
        return fuse(self.fusion, [dense, lexical], weights=self.weights, norm=self.norm)


DEFAULT_SETTINGS = HybridSettings()


# keeping BM25 beside the catalog ----------------------------------------------------------
def catalog_rows(conn: sqlite3.Connection) -> tuple[list[int], list[str]]:
    rows = conn.execute("SELECT id, text_hash FROM chunks ORDER BY id").fetchall()
    return [int(r[0]) for r in rows], [str(r[1]) for r in rows]


def catalog_texts(conn: sqlite3.Connection, ids: Sequence[int], title_weight: int) -> list[str]:
    found: dict[int, str] = {}
    for i in range(0, len(ids), 500):
        part = [int(x) for x in ids[i : i + 500]]
        marks = ",".join("?" * len(part))
        for cid, title, heading, text in conn.execute(
                f"SELECT id, title, heading, text FROM chunks WHERE id IN ({marks})", part):
            found[int(cid)] = lexical_text(title, heading, text, title_weight)
    return [found[int(i)] for i in ids]


def _sync(lex: Bm25Index, conn: sqlite3.Connection) -> None:
    ids, hashes = catalog_rows(conn)
    weight = lex.settings.title_weight
    lex.update(ids, hashes, None, fetch=lambda new: catalog_texts(conn, new, weight))


def sync_lexical(lex: Bm25Index | None, folder: Path, conn: sqlite3.Connection,
                 generation: int, settings: Bm25Settings) -> Bm25Index:
    """Writer side: bring BM25 in line with the (uncommitted) catalog, save it for `generation`."""
    if lex is None:
        lex = _load_latest(folder, settings) or Bm25Index(settings)
    _sync(lex, conn)
    lex.save(lexical_path(folder, generation))
    return lex


def _load_latest(folder: Path, settings: Bm25Settings) -> Bm25Index | None:
    """The newest BM25 file on disk, as a starting point; `_sync` corrects any difference."""
    files = sorted(folder.glob("lexical.*.npz"),
                   key=lambda p: int(p.name.split(".")[1]) if p.name.split(".")[1].isdigit()
                   else -1)
    for path in reversed(files):
        lex = Bm25Index.load(path, settings)
        if lex is not None:
            return lex
    return None


def open_lexical(folder: Path, conn: sqlite3.Connection, settings: Bm25Settings) -> Bm25Index:
    """Reader side: load the committed generation's file, or rebuild it from the catalog."""
    own = not conn.in_transaction
    if own:
        conn.execute("BEGIN")  # one snapshot for the generation number and the rows
    try:
        generation = int(dict(conn.execute("SELECT key, value FROM meta").fetchall())
                          .get("generation", 0))
        path = lexical_path(folder, generation)
        lex = Bm25Index.load(path, settings)
        if lex is None:
            lex = _load_latest(folder, settings) or Bm25Index(settings)
            _sync(lex, conn)
            with contextlib.suppress(OSError):  # a read-only folder still searches
                lex.save(path)
    finally:
        if own:
            conn.execute("COMMIT")
    return lex


def finish_checkpoint(folder: Path, generation: int) -> None:
    collect_garbage(folder, keep=generation)


# searching ---------------------------------------------------------------------------------
@dataclass
class Candidates:
    """Both sides' top chunks for one query, with the time each took."""

    dense: Run
    lexical: Run
    timings: dict[str, float]


def candidates(index: Index, query: str, depth: int, mode: str) -> Candidates:
    if mode not in MODES:
        raise ValueError(f"unknown search mode {mode!r}: use one of {', '.join(MODES)}")
    empty: Run = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))
    dense, lexical = empty, empty
    timings = {"embed_ms": 0.0, "search_ms": 0.0}
    if mode in ("dense", "hybrid"):
        t0 = time.perf_counter()
        qv = index.embedder.embed_query(query)
        t1 = time.perf_counter()
        scores, ids = index.vectors.search(qv[None, :], depth)
        keep = ids[0] >= 0
        dense = (ids[0][keep].astype(np.int64), scores[0][keep].astype(np.float32))
        timings["embed_ms"] = (t1 - t0) * 1e3
        timings["search_ms"] = (time.perf_counter() - t1) * 1e3
    if mode in ("lexical", "hybrid"):
        t0 = time.perf_counter()
        lexical = index.lexical.search(query, depth)
        if mode == "hybrid" and index.retrieval.prf_docs > 0:
            lexical = feedback(index.retrieval, index.lexical, query, dense, lexical, depth)
        timings["lexical_ms"] = (time.perf_counter() - t0) * 1e3
    return Candidates(dense, lexical, timings)


def feedback(settings: HybridSettings, lex: Bm25Index, query: str, dense: Run, lexical: Run,
             depth: int) -> Run:
    """Second BM25 pass with the query expanded from the first fused ranking."""
    first, _ = settings.fuse(dense, lexical)
    terms = lex.expand(query, first[: settings.prf_docs].tolist(), settings.prf_terms,
                       settings.prf_weight)
    return lex.search(terms, depth)


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


