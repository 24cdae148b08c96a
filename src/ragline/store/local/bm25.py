"""The local store's BM25: term counts per chunk, kept beside the vectors, updated incrementally.

The stored state is the raw term-frequency matrix (one row per chunk, sparse), so an ingest
only tokenizes the chunks it adds, and BM25 parameters (k1, b) are applied when the index is
loaded, not baked in. Scoring is the Lucene variant used by `bm25s` (tests check that the
scores agree); the analysis is `ragline.store.lexical.Analyzer`, shared with every store.

Durability mirrors the vectors: `lexical.<gen>.npz` is written next to `vectors.<gen>.faiss`
(temp file, fsync, rename) before the catalog commits generation `gen`, so a reader always
finds the file of the committed generation, or rebuilds it from the catalog if it is absent.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import BinaryIO

import numpy as np
import scipy.sparse as sp

from ragline.fsutil import atomic_write
from ragline.store.lexical import TOKEN, Analyzer, Bm25Settings

LEXICAL_VERSION = 1


class Bm25Index:
    """Term frequencies per chunk id, plus the BM25 weight matrix built from them on demand."""

    def __init__(self, settings: Bm25Settings | None = None) -> None:
        self.settings = settings or Bm25Settings()
        self.analyzer = Analyzer(self.settings.stemmer)
        self.ids = np.zeros(0, dtype=np.int64)
        self.hashes: list[str] = []
        self.vocab: dict[str, int] = {}
        self._word_tid: dict[str, int] = {}  # surface word -> term id, -1 for stopwords
        self.tf = sp.csr_matrix((0, 0), dtype=np.float32)
        self._weights: sp.csc_matrix | None = None
        self._rows_w: sp.csr_matrix | None = None
        self._row_of: dict[int, int] | None = None
        self._idf: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ids)

    # building -----------------------------------------------------------------------------
    def _term_ids(self, words: Iterable[str]) -> None:
        """Give each new surface word its term id (-1 for a stopword)."""
        for word in words:
            stems = self.analyzer.terms(word)
            self._word_tid[word] = (self.vocab.setdefault(stems[0], len(self.vocab))
                                    if stems else -1)

    def _rows(self, texts: Sequence[str]) -> sp.csr_matrix:
        """Term counts of `texts`; one dict look-up per word, the rest in numpy."""
        word_tid = self._word_tid
        parts: list[list[int]] = []
        for text in texts:
            words = TOKEN.findall(text.lower())
            new = set(words).difference(word_tid)
            if new:
                self._term_ids(new)
            parts.append(list(map(word_tid.__getitem__, words)))
        lengths = np.fromiter((len(p) for p in parts), dtype=np.int64, count=len(parts))
        tids = np.fromiter((t for p in parts for t in p), dtype=np.int64, count=int(lengths.sum()))
        rows = np.repeat(np.arange(len(parts)), lengths)
        keep = tids >= 0
        data = np.ones(int(keep.sum()), dtype=np.float32)
        out = sp.csr_matrix((data, (rows[keep], tids[keep])),
                            shape=(len(texts), len(self.vocab)))
        out.sum_duplicates()  # repeated terms become counts
        return out

    def update(self, ids: Sequence[int], hashes: Sequence[str], texts: Iterable[str] | None,
               fetch: Callable[[list[int]], list[str]] | None = None) -> tuple[int, int]:
        """Make the index hold exactly `ids` (with these content hashes).

        Rows whose (id, hash) is unchanged are kept; the rest are dropped, and the texts of new
        rows come from `fetch(new_ids) -> list[str]`, so only new chunks are tokenized.
        Returns (added, removed).
        """
        want = dict(zip((int(i) for i in ids), hashes, strict=True))
        have = dict(zip(self.ids.tolist(), self.hashes, strict=True))
        keep = np.array([want.get(i) == h for i, h in have.items()], dtype=bool)
        new_ids = [i for i, h in want.items() if have.get(i) != h]
        removed = int((~keep).sum()) if len(keep) else 0
        if not new_ids and not removed:
            return 0, 0
        if texts is None and fetch is None:
            raise ValueError("update needs the new rows' texts or a way to fetch them")
        new_texts = list(texts) if texts is not None else fetch(new_ids)  # type: ignore[misc]
        rows = self._rows(new_texts)
        kept = self.tf[np.flatnonzero(keep)] if len(keep) else self.tf
        kept.resize((kept.shape[0], len(self.vocab)))
        self.tf = sp.vstack([kept, rows], format="csr", dtype=np.float32)
        self.ids = np.concatenate([self.ids[keep] if len(keep) else self.ids,
                                   np.array(new_ids, dtype=np.int64)])
        self.hashes = [h for h, k in zip(self.hashes, keep, strict=True) if k] + \
            [want[i] for i in new_ids]
        self._weights = self._rows_w = self._row_of = None
        return len(new_ids), removed

    def build(self, ids: Sequence[int], hashes: Sequence[str], texts: Sequence[str]) -> None:
        """Index from scratch (tests, tuning)."""
        self.update(ids, hashes, texts)

    # scoring ------------------------------------------------------------------------------
    def _prepare(self) -> sp.csc_matrix:
        if self._weights is None:
            tf = self.tf
            n = tf.shape[0]
            lengths = np.asarray(tf.sum(axis=1)).ravel()
            avg = float(lengths.mean()) if n else 1.0
            df = np.bincount(tf.indices, minlength=tf.shape[1]).astype(np.float32)
            self._idf = np.log1p((n - df + 0.5) / (df + 0.5)).astype(np.float32)
            k1, b = self.settings.k1, self.settings.b
            norm = k1 * (1 - b + b * lengths / max(avg, 1e-9))
            row_norm = np.repeat(norm.astype(np.float32), np.diff(tf.indptr))
            data = tf.data / (tf.data + row_norm) * self._idf[tf.indices]
            weights = sp.csr_matrix((data.astype(np.float32), tf.indices, tf.indptr),
                                    shape=tf.shape)
            self._rows_w = weights
            self._weights = weights.tocsc()
        return self._weights

    def reset_settings(self, settings: Bm25Settings) -> None:
        """New k1/b on the same term counts (tuning); title weight needs a rebuild."""
        self.settings = settings
        self._weights = self._rows_w = None

    def query_terms(self, query: str) -> list[int]:
        return [self.vocab[t] for t in dict.fromkeys(self.analyzer.terms(query))
                if t in self.vocab]

    def scores(self, query: str | dict[int, float]) -> np.ndarray:
        """BM25 score of every row (row order = `self.ids`) for a query or weighted terms."""
        weights = self._prepare()
        terms = query if isinstance(query, dict) else dict.fromkeys(self.query_terms(query), 1.0)
        if not terms or weights.shape[0] == 0:
            return np.zeros(weights.shape[0], dtype=np.float32)
        cols = list(terms)
        w = np.fromiter(terms.values(), dtype=np.float32, count=len(terms))
        return np.asarray(weights[:, cols] @ w, dtype=np.float32).ravel()

    def expand(self, query: str, feedback: Sequence[int], terms: int = 10,
               weight: float = 0.5) -> dict[int, float]:
        """Pseudo-relevance feedback: the query's terms (weight 1) plus the `terms` terms that
        weigh most in the `feedback` chunks, scaled to at most `weight` (RM3-like)."""
        self._prepare()
        assert self._rows_w is not None
        if self._row_of is None:
            self._row_of = {int(i): r for r, i in enumerate(self.ids.tolist())}
        q = dict.fromkeys(self.query_terms(query), 1.0)
        rows = [self._row_of[int(i)] for i in feedback if int(i) in self._row_of]
        if not rows or terms <= 0:
            return q
        total = np.asarray(self._rows_w[rows].sum(axis=0), dtype=np.float64).ravel()
        total[list(q)] = 0.0
        top = np.argsort(-total)[:terms]
        top = top[total[top] > 0]
        if len(top):
            scale = weight / float(total[top[0]])
            for t in top.tolist():
                q[int(t)] = float(total[t]) * scale
        return q

    def search(self, query: str | dict[int, float], k: int,
               allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (chunk ids, scores), best first; rows with score 0 are left out, and so are
        rows whose id is not in `allowed` (sorted ids) when a filter gave one."""
        scores = self.scores(query)
        if allowed is not None and len(scores):
            scores = np.where(np.isin(self.ids, allowed, assume_unique=True), scores, 0.0)
        if k <= 0 or not len(scores):
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.lexsort((self.ids[top], -scores[top]))]
        top = top[scores[top] > 0]
        return self.ids[top], scores[top].astype(np.float32)

    # persistence --------------------------------------------------------------------------
    def save(self, path: Path) -> None:
        """Write durably (ragline.fsutil.atomic_write)."""
        vocab = sorted(self.vocab, key=self.vocab.__getitem__)
        header = {"version": LEXICAL_VERSION, "settings": asdict(self.settings)}
        small = self.tf.nnz == 0 or self.tf.data.max() < 65535

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as fh:
                np.savez(fh, header=np.array(json.dumps(header)), ids=self.ids,
                         hashes=np.array(self.hashes, dtype="U32"),
                         vocab=np.array(vocab, dtype=str),
                         indptr=self.tf.indptr.astype(np.int64),
                         indices=self.tf.indices.astype(np.int32),
                         data=self.tf.data.astype(np.uint16 if small else np.float32))

        atomic_write(path, write)

    @classmethod
    def load(cls, path: Path | BinaryIO, settings: Bm25Settings) -> Bm25Index | None:
        """Read a saved index (a path or an open file); None if absent, damaged, or made with
        other text settings."""
        try:
            with np.load(path, allow_pickle=False) as z:
                header = json.loads(str(z["header"]))
                saved = Bm25Settings(**header["settings"])
                if header.get("version") != LEXICAL_VERSION or (
                        saved.title_weight, saved.stemmer) != (settings.title_weight,
                                                               settings.stemmer):
                    return None
                index = cls(settings)
                index.ids = z["ids"].astype(np.int64)
                index.hashes = [str(h) for h in z["hashes"]]
                index.vocab = {str(t): i for i, t in enumerate(z["vocab"])}
                index.tf = sp.csr_matrix(
                    (z["data"].astype(np.float32), z["indices"], z["indptr"]),
                    shape=(len(index.ids), len(index.vocab)))
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile):
            return None  # a damaged file is rebuilt from the catalog
        return index
