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


# N and avgdl as the local store computes them (avgdl 1 for an empty index, never below 1e-9)
_SCORED = """
WITH stats AS (
    SELECT chunks::float8 AS n,
           greatest(CASE WHEN chunks > 0 THEN total_len::float8 / chunks ELSE 1 END, 1e-9)
               AS avgdl
    FROM lexical_stats),
q AS (
    SELECT t.term, ln(1 + (s.n - t.df + 0.5) / (t.df + 0.5)) AS idf,
           %(k1)s * (1 - %(b)s) AS c0, %(k1)s * %(b)s / s.avgdl AS c1
    FROM terms t CROSS JOIN stats s
    WHERE t.term = ANY(%(terms)s::text[]) AND t.df > 0),
scored AS (
    SELECT p.chunk_id AS id, sum(q.idf * p.tf / (p.tf + q.c0 + q.c1 * p.lex_len)) AS score
    FROM q JOIN postings p ON p.term = q.term
    GROUP BY p.chunk_id)
"""


def bm25_query(terms: list[str], k: int, settings: Bm25Settings,
               where: tuple[str, list[Any]] | None) -> tuple[str, dict[str, Any]]:
    """SQL and parameters of a top-k BM25 search; `where` is a condition on `chunks.meta`
    (from `filters.to_sql`, positional %s, which are renamed here)."""
    params: dict[str, Any] = {"terms": terms, "k": k, "k1": float(settings.k1),
                              "b": float(settings.b)}
    if where is None:
        sql = _SCORED + "SELECT id, score FROM scored WHERE score > 0 " \
                        "ORDER BY score DESC, id LIMIT %(k)s"
        return sql, params
    cond, values = where
    pieces = cond.split("%s")
    named = pieces[0]
    for i, (value, piece) in enumerate(zip(values, pieces[1:], strict=True)):
        params[f"f{i}"] = value
        named += f"%(f{i})s" + piece
    sql = _SCORED + ("SELECT s.id, s.score FROM scored s JOIN chunks c ON c.id = s.id "
                     f"WHERE s.score > 0 AND {named} ORDER BY s.score DESC, s.id LIMIT %(k)s")
    return sql, params
