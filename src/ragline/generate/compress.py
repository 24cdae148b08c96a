"""Context compression: only the sentences most likely to answer go in the prompt.

Why: on 2 CPU cores prefill runs at ~40-110 prompt tokens/s, so a prompt of three whole SQuAD
passages (~550 tokens) costs 5-14 s before the first answer word. The answer to a factoid
question sits in one sentence, so the prompt keeps the best sentences as generate/select.py
ranks them, in their passage's order so the text still reads as written. The kept sentences
are also all the grammar lets the model quote.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ragline.generate import select

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
