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
from collections.abc import Callable, Sequence

import numpy as np

from ragline.generate.citations import content_tokens

Embed = Callable[[Sequence[str]], np.ndarray]  # L2-normalised rows, one per text

# split after . ! ? (and a closing quote or bracket) before a capital, digit or quote, or at
# blank lines: "U.S. forces" and "e.g. this" stay whole often enough for ranking
_SPLIT = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[\"'(\[]?[A-Z0-9])|\n\s*\n")


def split_sentences(text: str) -> list[str]:
    """The passage's sentences, whitespace-trimmed, in order."""
    return [s.strip() for s in _SPLIT.split(text) if s and s.strip()]


def _scores(question: str, sentences: Sequence[str], embed: Embed | None) -> np.ndarray:
    if embed is not None:
        vecs = embed([question, *sentences])
        return vecs[1:] @ vecs[0]
    q = content_tokens(question)
    return np.array([len(q & content_tokens(s)) / (len(q) or 1) for s in sentences])


def compress(question: str, passages: Sequence[str], per_passage: int,
             embed: Embed | None = None, budget: int = 0) -> list[str]:
    """Each passage cut to its `per_passage` sentences most like the question (all of it
    when it has no more); 0 or less keeps the passages whole. With a `budget`, only the best
    `budget` of those sentences over all passages stay (a passage may become ""). One
    embedding call for all."""
    if per_passage <= 0:
        return list(passages)
    split = [split_sentences(p) for p in passages]
    flat = [s for ss in split for s in ss]
    if not flat:
        return list(passages)
    scores = _scores(question, flat, embed)
    kept: list[list[int]] = []
    at = 0
    for ss in split:
        mine = scores[at:at + len(ss)]
        kept.append([at + i for i in np.argsort(-mine, kind="stable")[:per_passage]])
        at += len(ss)
    if budget > 0:
        best = set(sorted((i for k in kept for i in k), key=lambda i: -scores[i])[:budget])
        kept = [[i for i in k if i in best] for k in kept]
    return [" ".join(flat[i] for i in sorted(k)) for k in kept]
