"""One extractive answer: compress the passages, quote a span under a grammar, score it.

The prompt shows each passage's best sentences (generate/compress.py); the grammar
(generate/extractive.py) lets the model write only a run of those words, or NONE. The reply
is mapped back to the passage it was copied from (the citation, exact by construction) and to
the sentence around it (the answer a person reads; `--short` gives the span).

Confidence, for abstention: see `confidence`. Every signal measured is kept in `signals`
(also the model's raw log-probs of the quote and of starting to say "none", which llama.cpp
returns before the grammar masks tokens, and the agreement across passages) for the
benchmark's curves; bench/qa.py's notes say how they compared.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ragline.generate import citations as cit
from ragline.generate import extractive as ex
from ragline.generate.base import GenerationStats, Message
from ragline.generate.compress import Embed, compress
from ragline.generate.prompt import extract_messages, shown_text
from ragline.types import Hit

NONE_REPLIES = ex.NONE_REPLIES
PER_PASSAGE = 2  # sentences of each passage in the prompt (0: whole passages)
BUDGET = 0  # the most sentences over all passages (0: no limit)
SPAN_PIECES = 32  # the longest quote, in streamed pieces (about tokens)
TOP_LOGPROBS = 10


@dataclass
class Prepared:
    """What goes to the model: messages, request fields (grammar), and the shown texts."""

    messages: list[Message]
    extra: dict[str, Any]
    texts: list[str]


def prepare(question: str, hits: Sequence[Hit], history: Sequence[Message],
            per_passage: int, embed: Embed | None, budget: int = BUDGET) -> Prepared:
    texts = compress(question, [shown_text(h.text) for h in hits], per_passage, embed, budget)
    passages = [(h.source, h.page, t) for h, t in zip(hits, texts, strict=True)]
    extra = {"grammar": ex.span_grammar(texts), "logprobs": True,
             "top_logprobs": TOP_LOGPROBS}
    return Prepared(extract_messages(question, passages, history), extra, texts)


@dataclass
class Quote:
    """The model's extractive reply, located and scored."""

    reply: str
    none: bool  # the model said NONE
    stats: GenerationStats
    span: str = ""  # the quoted words, edge punctuation trimmed
    parts: tuple[str, str, str] = ("", "", "")  # (before, quoted words, after) in the sentence
    n: int = 0  # the passage it came from, [1]..[k]
    signals: dict[str, float] = field(default_factory=dict)
    confidence: float = 0.0
    first: float | None = None  # when the first words went to the reader

    @property
    def sentence(self) -> str:
        return " ".join(p for p in self.parts if p)

    def abstained(self, min_confidence: float) -> bool:
        return self.none or not self.span or self.confidence < min_confidence


# logistic weights over (bias, relevance, sent_sim, overlap), fitted on the tuning split
# (bench/qa.py --tune --unanswerable 40): see bench/qa.py's notes
WEIGHTS = (-1.29, 1.05, 0.43, 1.11)


def confidence(signals: dict[str, float]) -> float:
    """P(answerable) from a logistic model of the signals that separated answerable from
    hard unanswerable questions on the tuning split: the passage's dense relevance, the
    question's similarity to the quoted sentence, and their content-word overlap. The model's
    own log-probs did not (AUC ~0.5: a 0.5B model is as sure of a near miss as of an answer)."""
    b, w_rel, w_sim, w_ovl = WEIGHTS
    z = b + w_rel * signals["relevance"] + w_sim * signals["sent_sim"] + \
        w_ovl * signals["overlap"]
    return 1.0 / (1.0 + math.exp(-z))


def read_reply(question: str, reply: str, prepared: Prepared, stats: GenerationStats,
               relevance: float = 0.0, embed: Embed | None = None) -> Quote | None:
    """Locate and score a reply; None when it is no quote at all (the grammar was ignored).
    A reply cut off by the length cap may end in half a word: that word is dropped."""
    text = reply.strip()
    if text in NONE_REPLIES:
        return Quote(reply, True, stats, signals=ex.span_signals(
            stats.logprobs, set(), set(), 0, len(prepared.texts)))
    span = ex.find_span(text, prepared.texts)
    if span is None and " " in text:
        span = ex.find_span(text.rsplit(" ", 1)[0], prepared.texts)
    if span is None:
        return None
    shown = prepared.texts[span.passage]
    parts = ex.sentence_around(shown, span)
    quoted = ex.clean_span(parts[1])
    holders = sum(f" {quoted.lower()} " in f" {t.lower()} " for t in prepared.texts)
    sentence = " ".join(p for p in parts if p)
    signals = ex.span_signals(stats.logprobs, cit.content_tokens(question),
                              cit.content_tokens(sentence), holders, len(prepared.texts))
    signals["relevance"] = round(relevance, 4)
    signals["sent_sim"] = round(_similarity(question, sentence, embed), 4)
    return Quote(reply, False, stats, quoted, parts, span.passage + 1, signals,
                 confidence(signals))


def pieces(found: Quote, short: bool, streamed: bool) -> list[tuple[str, bool]]:
    """What the reader still gets once the quote is decoded, as (text, is the quote): with
    `short`, the quote unless it streamed already, then its [n]; else the sentence around it,
    the quoted words apart so a terminal can highlight them."""
    if short:
        out = [] if streamed else [(found.span, True)]
        return [*out, (f" [{found.n}]", False)]
    before, words, after = found.parts
    out = [(before + " ", False)] if before else []
    return [*out, (words, True), ((" " + after if after else "") + f" [{found.n}]", False)]


def _similarity(question: str, sentence: str, embed: Embed | None) -> float:
    """Cosine of question and quoted sentence (content-word overlap without an embedder)."""
    if embed is None:
        q = cit.content_tokens(question)
        return len(q & cit.content_tokens(sentence)) / (len(q) or 1)
    v = embed([question, sentence])
    return float(v[0] @ v[1])


def citation(found: Quote, hits: Sequence[Hit]) -> cit.Citation:
    """The passage the quote came from; supported by construction (its words are in it)."""
    hit = hits[found.n - 1]
    return cit.Citation(n=found.n, chunk_id=hit.chunk_id, source=hit.source, page=hit.page,
                        text=hit.text, supported=True, by="quote",
                        overlap=cit.overlap(found.span, hit.text))
