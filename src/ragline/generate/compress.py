"""Context compression: only the sentences of each passage that bear on the question go in the
prompt.

Why: on 2 CPU cores prefill runs at ~40-110 prompt tokens/s, so a prompt of three whole SQuAD
passages (~550 tokens) costs 5-14 s before the first answer word. The answer to a factoid
question sits in one sentence, usually the one most similar to the question, so each passage
keeps its best few sentences (cosine similarity with the embedding model the index has already
loaded; content-word overlap when none is at hand), in their original order so the text still
reads as written. The kept sentences are also all the grammar lets the model quote.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ragline.generate import select
from ragline.generate.select import Embed

# split after . ! ? (and a closing quote or bracket) before a capital, digit or quote, or at
# blank lines: "U.S. forces" and "e.g. this" stay whole often enough for ranking
_SPLIT = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[\"'(\[]?[A-Z0-9])|\n\s*\n")


def split_sentences(text: str) -> list[str]:
    """The passage's sentences, whitespace-trimmed, in order."""
    return [s.strip() for s in _SPLIT.split(text) if s and s.strip()]


def choose(ranked: Sequence[select.Sentence], per_passage: int,
           budget: int = 0) -> list[select.Sentence]:
    """The best `per_passage` sentences of each passage in `ranked`; with a `budget`, only the
    best `budget` of those over all passages. In passage order, each passage's in its order,
    so the text reads as written."""
    seen: dict[int, int] = {}
    kept: list[select.Sentence] = []
    for s in ranked:
        if seen.get(s.passage, 0) < per_passage:
            seen[s.passage] = seen.get(s.passage, 0) + 1
            kept.append(s)
    if budget > 0:
        kept = kept[:budget]
    return sorted(kept, key=lambda s: (s.passage, s.index))


def keep(ranked: Sequence[select.Sentence], passages: int, per_passage: int,
         budget: int = 0) -> list[str]:
    """The text of each of the `passages` made of its `choose`n sentences (a passage may
    become "")."""
    chosen = choose(ranked, per_passage, budget)
    return [" ".join(s.text for s in chosen if s.passage == p) for p in range(passages)]


def compress(question: str, passages: Sequence[str], per_passage: int,
             embed: Embed | None = None, budget: int = 0,
             passage_scores: Sequence[float] = ()) -> list[str]:
    """Each passage cut to its `per_passage` sentences most likely to answer the question
    (generate/select.py; all of it when it has no more); 0 or less keeps the passages whole.
    `budget` as in `keep`; `passage_scores` are the retriever's, best first."""
    if per_passage <= 0:
        return list(passages)
    ranked = select.rank(question, [split_sentences(p) for p in passages], embed,
                         passage_scores)
    return keep(ranked, len(passages), per_passage, budget) if ranked else list(passages)
