"""BM25 in PostgreSQL: postings rows plus packed posting blocks, scored in numpy.

The analysis is the shared `Analyzer` and the formula the local store's (`store/local/bm25.py`,
Lucene's variant): idf = ln(1 + (N - df + 0.5) / (df + 0.5)) and, per distinct query term,
idf * tf / (tf + k1 * (1 - b + b * len / avgdl)), with N, df and avgdl over all chunks (a
filter only removes rows from the result), so both stores give the same scores.

Postings rows (term, chunk, tf, length) are the record; deletes and checks use them. Searches
read `lexical_blocks` instead: per term and range of 2**SHIFT chunk ids, that term's postings
packed into three bytea columns (id offsets, tf, length; int2 each, int4 for tf and length
where a length passes 32767), which each commit brings in step (`BlockChanges`). Summing a
query's postings in SQL cost ~1 us per posting (a query of common terms touches 200k of them
at 100k chunks: 260 ms); reading its blocks takes ~1.5 ms and numpy scores them in ~1.5 ms.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg

from ragline.store.lexical import Analyzer, Bm25Settings, lexical_text

#: a block holds one term's postings of the chunk ids [r << SHIFT, (r + 1) << SHIFT): at most
#: 16 kB a column, what a commit that appends to it or deletes from it rewrites; a search of
#: 100k chunks reads ~13 rows per common term (ranges of 2**12 to 2**14: 2.0 to 1.1 ms)
SHIFT = 13
NARROW = 32767  # int2's largest: lengths (and so tfs) up to it are packed in two bytes


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


# writing blocks ---------------------------------------------------------------------------
_MASK = (1 << SHIFT) - 1
# one group per (term, range), ids ascending; values past int2 are clipped here and the
# groups that had one (`wide`) are made again with int4 values by _WIDE
_AGG = f"""
SELECT p.term, p.chunk_id >> {SHIFT} AS r,
       string_agg(int2send((p.chunk_id & {_MASK})::int2), ''::bytea ORDER BY p.chunk_id) AS ids,
       string_agg(int2send(least(p.tf, {NARROW})::int2), ''::bytea ORDER BY p.chunk_id) AS tfs,
       string_agg(int2send(least(p.lex_len, {NARROW})::int2), ''::bytea ORDER BY p.chunk_id)
           AS lens,
       max(p.lex_len) > {NARROW} AS wide
FROM postings p {{join}}
GROUP BY 1, 2"""
_RUNS = ("JOIN unnest(%(lo)s::int8[], %(hi)s::int8[]) AS run(lo, hi) "
         "ON p.chunk_id >= run.lo AND p.chunk_id < run.hi")
# new postings go at the end of their blocks (chunk ids only grow); a block whose values are
# not all int2 afterwards (`odd`: wide before, or now) is made again by _WIDE
_UPSERT = """
WITH agg AS MATERIALIZED ({agg}),
up AS (INSERT INTO lexical_blocks AS b (term, r, ids, tfs, lens)
       SELECT term, r, ids, tfs, lens FROM agg
       ON CONFLICT (term, r) DO UPDATE SET ids = b.ids || excluded.ids,
           tfs = b.tfs || excluded.tfs, lens = b.lens || excluded.lens
       RETURNING b.term, b.r, length(b.tfs) <> length(b.ids) AS odd)
SELECT term, r FROM agg WHERE wide UNION SELECT term, r FROM up WHERE odd"""
_WIDE = f"""
UPDATE lexical_blocks b SET tfs = w.tfs, lens = w.lens FROM (
    SELECT p.term, p.chunk_id >> {SHIFT} AS r,
           string_agg(int4send(p.tf), ''::bytea ORDER BY p.chunk_id) AS tfs,
           string_agg(int4send(p.lex_len), ''::bytea ORDER BY p.chunk_id) AS lens
    FROM unnest(%s::text[], %s::int8[]) AS x(term, r)
    JOIN postings p ON p.term = x.term AND p.chunk_id >= x.r << {SHIFT}
                   AND p.chunk_id < (x.r + 1) << {SHIFT}
    GROUP BY 1, 2) w
WHERE b.term = w.term AND b.r = w.r"""


class BlockChanges:
    """What a transaction did to postings, for the blocks at commit (`write`): chunks added
    (their postings go at the end of their blocks: chunk ids only grow) and postings deleted
    (taken out of their blocks in numpy; past `SURGERY_MAX` of them, their ranges are made
    again from the rows instead, ~0.15 s a range)."""

    SURGERY_MAX = 500_000

    def __init__(self, every: bool = False) -> None:
        self.added: list[int] = []
        self.gone: list[tuple[str, int]] | None = []  # (term, chunk id); None: too many
        # ranges of deleted chunks; None: remake every block (postings made anew)
        self.ranges: set[int] | None = None if every else set()

    def drop(self, gone: Iterable[tuple[str, int]]) -> None:
        for term, cid in gone:
            if self.ranges is not None:
                self.ranges.add(cid >> SHIFT)
            if self.gone is not None:
                self.gone.append((term, cid))
                if len(self.gone) > self.SURGERY_MAX:
                    self.gone = None

    def write(self, conn: psycopg.Connection[Any]) -> None:
        """Bring the blocks in step with the postings rows, in the caller's transaction."""
        added = self.added
        if self.ranges is None:
            conn.execute("DELETE FROM lexical_blocks")
            _upsert(conn, "", {})
            return
        if self.gone is None:
            todo = sorted(self.ranges)
            conn.execute("DELETE FROM lexical_blocks WHERE r = ANY(%s)", (todo,))
            _upsert(conn, _RUNS, _bounds([(a << SHIFT, (b + 1) << SHIFT)
                                          for a, b in _runs(todo)]))
            added = [i for i in added if i >> SHIFT not in self.ranges]
        elif self.gone:
            _remove(conn, self.gone)
        if added:  # those deleted again have no rows left to append
            _upsert(conn, _RUNS, _bounds([(a, b + 1) for a, b in _runs(sorted(added))]))


def _remove(conn: psycopg.Connection[Any], gone: list[tuple[str, int]]) -> None:
    """Take deleted postings out of their blocks: each block read, filtered, written once."""
    offsets: dict[tuple[str, int], list[int]] = {}
    for term, cid in gone:
        offsets.setdefault((term, cid >> SHIFT), []).append(cid & _MASK)
    keys = list(offsets)
    rows = conn.cursor(binary=True).execute(
        "SELECT b.term, b.r, b.ids, b.tfs, b.lens FROM unnest(%s::text[], %s::int8[]) AS "
        "x(term, r) JOIN lexical_blocks b ON b.term = x.term AND b.r = x.r",
        ([t for t, _ in keys], [r for _, r in keys])).fetchall()
    kept: list[tuple[str, int, bytes, bytes, bytes]] = []
    empty: list[tuple[str, int]] = []
    dropped = np.zeros(1 << SHIFT, dtype=bool)  # by id offset, set per block
    for term, r, ids, tfs, lens in rows:
        dropped[offsets[(term, r)]] = True
        keep = ~dropped[np.frombuffer(ids, ">i2")]
        dropped[offsets[(term, r)]] = False
        if not keep.any():
            empty.append((term, r))
        elif not keep.all():
            values = [np.frombuffer(v, ">i2" if len(v) == len(ids) else ">i4")[keep]
                      for v in (ids, tfs, lens)]
            if values[2].max() <= NARROW:  # no longer wide
                values = [v.astype(">i2") for v in values]
            kept.append((term, r, *(v.tobytes() for v in values)))  # type: ignore[arg-type]
    if kept:  # binary: no quoting of a thousand terms
        conn.cursor(binary=True).execute(
            "UPDATE lexical_blocks b SET ids = x.ids, tfs = x.tfs, lens = x.lens "
            "FROM unnest(%s::text[], %s::int8[], %s::bytea[], %s::bytea[], %s::bytea[]) "
            "AS x(term, r, ids, tfs, lens) WHERE b.term = x.term AND b.r = x.r",
            [list(c) for c in zip(*kept, strict=True)])
    if empty:
        conn.execute("DELETE FROM lexical_blocks b USING unnest(%s::text[], %s::int8[]) AS "
                     "x(term, r) WHERE b.term = x.term AND b.r = x.r",
                     ([t for t, _ in empty], [r for _, r in empty]))


def _upsert(conn: psycopg.Connection[Any], join: str, params: dict[str, Any]) -> None:
    odd = conn.execute(_UPSERT.format(agg=_AGG.format(join=join)),  # type: ignore[arg-type]
                       params).fetchall()
    if odd:
        conn.execute(_WIDE, ([t for t, _ in odd], [r for _, r in odd]))  # type: ignore[arg-type]


def _bounds(spans: list[tuple[int, int]]) -> dict[str, Any]:
    return {"lo": [a for a, _ in spans], "hi": [b for _, b in spans]}


def _runs(values: Sequence[int]) -> list[tuple[int, int]]:
    """Sorted numbers as (first, last) runs of consecutive ones."""
    out: list[tuple[int, int]] = []
    for v in values:
        if out and out[-1][1] == v - 1:
            out[-1] = (out[-1][0], v)
        else:
            out.append((v, v))
    return out


#: blocks that differ from what the postings rows make (for verify)
BAD_BLOCKS = f"""
SELECT count(*) FROM lexical_blocks b FULL JOIN ({_AGG.format(join="")}) a USING (term, r)
WHERE b.term IS NULL OR a.term IS NULL OR b.ids <> a.ids
   OR (NOT a.wide AND (b.tfs <> a.tfs OR b.lens <> a.lens))
   OR (a.wide AND (length(b.tfs) <> 2 * length(b.ids) OR length(b.lens) <> 2 * length(b.ids)))
"""


# searching --------------------------------------------------------------------------------
#: what a search reads: the totals, and each query term's df and blocks (a binary cursor
#: brings the bytea values as they are)
BLOCKS = """
SELECT s.chunks, s.total_len, t.term, t.df, b.r, b.ids, b.tfs, b.lens
FROM lexical_stats s CROSS JOIN terms t JOIN lexical_blocks b ON b.term = t.term
WHERE t.term = ANY(%s::text[])"""


@dataclass
class Scored:
    """Every chunk with a score above 0 (ids ascending) and its score."""

    ids: np.ndarray  # int64
    scores: np.ndarray  # float32: what is returned, so ranks are by it (ties by id)

    def ranked(self, k: int) -> np.ndarray:
        """Positions of the k best, best first: they are picked in linear time, only they
        get sorted."""
        s = self.scores
        if k < len(s):
            kth = np.partition(s, len(s) - k)[len(s) - k]
            pick = np.flatnonzero(s >= kth)  # every tie of the last one: ids break them
        else:
            pick = np.arange(len(s))
        return pick[np.argsort(-s[pick], kind="stable")][:k]


def score_blocks(rows: Sequence[Sequence[Any]], terms: Sequence[str],
                 settings: Bm25Settings) -> Scored:
    """BM25 of every chunk in the blocks of `BLOCKS`, in float64 (as PostgreSQL did it),
    each chunk's terms summed in query order so equal inputs give equal sums."""
    if not rows:
        return Scored(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))
    position = {t: i for i, t in enumerate(terms)}
    rows = sorted(rows, key=lambda row: (position[row[2]], row[4]))
    n_chunks, total = float(rows[0][0]), float(rows[0][1])
    avgdl = max(total / n_chunks if n_chunks > 0 else 1.0, 1e-9)
    counts = np.fromiter((len(row[5]) // 2 for row in rows), dtype=np.int64, count=len(rows))
    base = np.fromiter((row[4] << SHIFT for row in rows), dtype=np.int64, count=len(rows))
    ids = np.repeat(base, counts) + np.frombuffer(b"".join(row[5] for row in rows), ">i2")
    tf, length = (_values([row[col] for row in rows], counts) for col in (6, 7))
    df = np.fromiter((row[3] for row in rows), dtype=np.float64, count=len(rows))
    idf = np.repeat(np.log1p((n_chunks - df + 0.5) / (df + 0.5)), counts)
    k1, b = float(settings.k1), float(settings.b)
    weight = idf * tf / (tf + k1 * (1 - b) + (k1 * b / avgdl) * length)
    low = int(ids.min())
    span = int(ids.max()) - low + 1
    if span <= 8 * len(ids) + 65536:  # a dense run of ids: one slot per id
        sums = np.bincount(ids - low, weights=weight, minlength=span)
        found = np.flatnonzero(sums > 0)
        return Scored(found + low, sums[found].astype(np.float32))
    found, slot = np.unique(ids, return_inverse=True)  # ids far apart (deleted ranges)
    sums = np.bincount(slot, weights=weight)
    keep = sums > 0
    return Scored(found[keep], sums[keep].astype(np.float32))


def _values(blocks: list[bytes], counts: np.ndarray) -> np.ndarray:
    """tf or length values of blocks, each block int2 or (wide) int4, as float64."""
    if sum(len(v) for v in blocks) == 2 * int(counts.sum()):
        return np.frombuffer(b"".join(blocks), ">i2").astype(np.float64)
    return np.concatenate([np.frombuffer(v, ">i2" if len(v) == 2 * n else ">i4")
                           for v, n in zip(blocks, counts.tolist(), strict=True)]
                          ).astype(np.float64)
