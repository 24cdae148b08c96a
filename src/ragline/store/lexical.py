"""The text side of BM25 shared by every store: analyzer, the text it sees, its settings.

Every backend tokenizes and stems with this one analyzer and scores with the same Lucene
BM25 formula (see `idf`), so lexical scores agree between stores; the tests check it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

TOKEN = re.compile(r"(?u)\b\w\w+\b")


def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


@dataclass(frozen=True)
class Bm25Settings:
    """What changes scores. `title_weight` repeats the title (a cheap field boost)."""

    k1: float = 1.2
    b: float = 0.75
    title_weight: int = 1
    stemmer: str = "english"


class Analyzer:
    """Text to stemmed terms; stems are cached per surface word, which makes it fast.

    Text is lower-cased, split on word characters, stripped of English stopwords and stemmed
    with PyStemmer's English (Snowball) stemmer: the analysis `bm25s` uses.
    """

    def __init__(self, stemmer: str = "english") -> None:
        import Stemmer

        self._stem = Stemmer.Stemmer(stemmer).stemWord if stemmer else (lambda w: w)
        self._stop = _stopwords()
        self._cache: dict[str, str | None] = {}

    def terms(self, text: str) -> list[str]:
        out: list[str] = []
        cache = self._cache
        for word in TOKEN.findall(text.lower()):
            stem = cache.get(word, "")
            if stem == "":
                stem = None if word in self._stop else self._stem(word)
                cache[word] = stem
            if stem is not None:
                out.append(stem)
        return out


def lexical_text(title: str | None, heading: str | None, text: str, title_weight: int) -> str:
    """The text BM25 sees: like `Chunk.embed_text`, with the title repeated `title_weight` times."""
    parts = [title] * max(title_weight, 0) if title else []
    if heading:
        parts.append(heading)
    parts.append(text)
    return "\n".join(parts)


def idf(n: int, df: int) -> float:
    """Lucene's BM25 idf, never negative: ln(1 + (N - df + 0.5) / (df + 0.5))."""
    return math.log1p((n - df + 0.5) / (df + 0.5))
