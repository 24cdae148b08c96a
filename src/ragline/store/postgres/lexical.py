"""BM25 in PostgreSQL: postings rows written by the writer, scores computed in one query.

The analysis is the shared `Analyzer` and the formula the local store's (`store/local/bm25.py`,
Lucene's variant): idf = ln(1 + (N - df + 0.5) / (df + 0.5)) and, per distinct query term,
idf * tf / (tf + k1 * (1 - b + b * len / avgdl)), with N, df and avgdl over all chunks (a
filter only removes rows from the result), so both stores give the same scores.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ragline.store.lexical import Analyzer, Bm25Settings, lexical_text


def analysis_key(settings: Bm25Settings) -> str:
    """What the stored postings depend on (k1 and b apply at query time)."""
    return f"title_weight={settings.title_weight} stemmer={settings.stemmer}"


@dataclass
class Postings:
    """Term counts of a batch of chunks, ready to be copied in."""

    lengths: list[int]  # per chunk: its number of terms (BM25's document length)
    rows: list[tuple[str, int, int, int]]  # (term, chunk id, tf, length)
    df: Counter[str]  # per term: in how many of these chunks it occurs


def postings(analyzer: Analyzer, settings: Bm25Settings,
             chunks: Iterable[tuple[int, str | None, str | None, str]]) -> Postings:
    """Postings of (id, title, heading, text) rows, analysed as every store does."""
    out = Postings([], [], Counter())
    for cid, title, heading, text in chunks:
        terms = analyzer.terms(lexical_text(title, heading, text, settings.title_weight))
        counts = Counter(terms)
        n = len(terms)
        out.lengths.append(n)
        out.rows.extend((term, cid, tf, n) for term, tf in counts.items())
        out.df.update(counts.keys())
    return out


# N and avgdl as the local store computes them (avgdl 1 for an empty index, never below
# 1e-9); idf and the length factors once per term (MATERIALIZED), not once per posting.
# The cost is the aggregate: ~0.4 us per posting of the query's terms, so a long query
# whose terms have 70k postings in 100k chunks takes ~30 ms.
_SCORED = """
WITH stats AS MATERIALIZED (
    SELECT chunks::float8 AS n,
           greatest(CASE WHEN chunks > 0 THEN total_len::float8 / chunks ELSE 1 END, 1e-9)
               AS avgdl
    FROM lexical_stats),
q AS MATERIALIZED (
    SELECT t.term, ln(1 + (s.n - t.df::float8 + 0.5) / (t.df::float8 + 0.5)) AS idf,
           %(k1)s * (1 - %(b)s) AS c0, %(k1)s * %(b)s / s.avgdl AS c1
    FROM terms t CROSS JOIN stats s
    WHERE t.term = ANY(%(terms)s::text[]) AND t.df > 0),
scored AS (
    SELECT p.chunk_id AS id, sum(q.idf * p.tf / (p.tf + q.c0 + q.c1 * p.lex_len)) AS score
    FROM q JOIN postings p ON p.term = q.term
    GROUP BY p.chunk_id)
"""
_TOP = "SELECT id, score FROM scored WHERE score > 0 ORDER BY score DESC, id LIMIT %(k)s"
# With a filter, chunks are checked best first, each by its primary key, until k pass: a
# filter that keeps most chunks costs a few probes, where a join would read every candidate's
# row (OFFSET 0 keeps the check out of the subquery, so it runs after the sort)
_TOP_WHERE = """
SELECT s.id, s.score FROM (
    SELECT id, score FROM scored WHERE score > 0 ORDER BY score DESC, id OFFSET 0) s
WHERE (SELECT {cond} FROM chunks c WHERE c.id = s.id)
LIMIT %(k)s"""


def bm25_query(terms: list[str], k: int, settings: Bm25Settings,
               where: tuple[str, list[Any]] | None) -> tuple[str, dict[str, Any]]:
    """SQL and parameters of a top-k BM25 search; `where` is a condition on `c.meta` (from
    `filters.to_sql`, with positional %s, renamed here to named ones)."""
    params: dict[str, Any] = {"terms": terms, "k": k, "k1": float(settings.k1),
                              "b": float(settings.b)}
    if where is None:
        return _SCORED + _TOP, params
    cond, values = where
    pieces = cond.split("%s")
    named = pieces[0]
    for i, (value, piece) in enumerate(zip(values, pieces[1:], strict=True)):
        params[f"f{i}"] = value
        named += f"%(f{i})s" + piece
    return _SCORED + _TOP_WHERE.format(cond=named), params
