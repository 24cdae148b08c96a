"""One extractive answer: rank the passages' sentences, decide whether they answer at all,
mark the words that answer in the best one.

The passages' sentences are ranked by how likely each holds the answer (generate/select.py,
with the cross-encoder of embed/cross.py and the span reader of embed/reader.py each reading
every sentence with the question); when even the best one is unlikely to (`confidence` under
the threshold), the answer is an abstention and the model is not asked. Otherwise the span
reader marks the answer's words in the best sentence (`read_span`; the default with the
embedded model: on SQuAD's tuning split its span scored F1 0.754 where the sentence held a
gold answer, against 0.667 for the 0.5B model's quote of the same sentences), or the model
does: the prompt shows the best BUDGET_* sentences and the grammar (generate/extractive.py)
lets the model write only a run of those words. It leaves NONE out: the model's own "none"
told answerable from unanswerable questions worse than chance (AUC 0.40); past the confidence
threshold it declined 7 of 200 answerable SQuAD questions (sentence answer) and only 3 of 100
unanswerable ones (bench/qa.py). The prompt still offers NONE, for servers that ignore
grammars (`read_reply` reads it). Either span is mapped back to the passage it was copied from
(the citation, exact by construction) and to the sentence around it (the answer a person
reads; `--short` gives the span).

Every signal measured is kept in `signals` (also the model's raw log-probs of the quote and of
starting to say "none", which llama.cpp returns before the grammar masks tokens, and the
agreement across passages) for the benchmark's curves; bench/qa.py's notes say how they
compared.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ragline.embed.reader import Found
from ragline.generate import citations as cit
from ragline.generate import extractive as ex
from ragline.generate import select
from ragline.generate.base import GenerationStats, Message
from ragline.generate.compress import choose, split_sentences
from ragline.generate.prompt import extract_messages, shown_text
from ragline.generate.select import Embed, Judge
from ragline.types import Hit

NONE_REPLIES = ex.NONE_REPLIES
PER_PASSAGE = 2  # sentences of each passage in the prompt (0: whole passages)
#: the most sentences over all passages in the prompt. The sentence answer shows the best one
#: (the model only picks the words to highlight): on 100 SQuAD tuning questions the best
#: sentence held a gold answer 0.70 of the time, the sentence the model quoted from out of
#: the best 2 0.64. The short answer too, since the cross-encoder ranks the sentences
#: (select.py): `--short` F1 on the 100 tuning questions 0.504 with the best sentence, 0.471
#: with the best 2, first token p50 0.84 / 1.31 s (before it, on 60: 0.423 / 0.476).
BUDGET_SENTENCE = 1
BUDGET_SHORT = 1
SPAN_PIECES = 32  # the longest quote, in streamed pieces (about tokens)
TOP_LOGPROBS = 10
#: a reader's best span of each sentence (embed/reader.py), None for one it cannot see
Read = Callable[[str, Sequence[str]], Sequence[Found | None]]
NO_LEAD = -10.0  # the lead of a sentence the reader cannot see (cut off by its token window)


@dataclass
class Prepared:
    """What goes to the model (messages, request fields with the grammar, the shown texts),
    what it may quote (`units`: (passage, text), each a run of words of one passage as
    written), and whether the passages seem to answer at all (`confidence`, from
    `signals`)."""

    messages: list[Message]
    extra: dict[str, Any]
    texts: list[str]
    units: list[tuple[int, str]]
    confidence: float = 1.0
    signals: dict[str, float] = field(default_factory=dict)


def rank_hits(question: str, hits: Sequence[Hit], embed: Embed | None,
              judge: Judge | None = None, lead: Judge | None = None
              ) -> tuple[list[str], list[select.Sentence]]:
    """(the passages as shown to the model, their sentences ranked): what `prepare` and the
    fit of select.py's weights (bench/qa_select.py) both rank, so they cannot drift apart."""
    shown = [shown_text(h.text) for h in hits]
    ranked = select.rank(question, [split_sentences(t) for t in shown], embed,
                         [h.score for h in hits], judge, lead)
    return shown, ranked


def prepare(question: str, hits: Sequence[Hit], history: Sequence[Message],
            per_passage: int, embed: Embed | None, budget: int = BUDGET_SHORT,
            relevance: float = 0.0, judge: Judge | None = None,
            lead: Judge | None = None) -> Prepared:
    """Rank the passages' sentences, score the best, and build the prompt from the best
    `budget` (at most `per_passage` a passage; 0: whole passages). `relevance` is the best
    passage's dense cosine. A quote may not run from one kept sentence into the next: they
    need not be neighbours in the passage, and a citation must hold the quote's words in a
    row."""
    shown, ranked = rank_hits(question, hits, embed, judge, lead)
    if per_passage > 0 and ranked:
        chosen = choose(ranked, per_passage, budget)
        units = [(s.passage, s.text) for s in chosen]
        texts = [" ".join(t for p, t in units if p == n) for n in range(len(shown))]
    else:
        units, texts = list(enumerate(shown)), shown
    passages = [(h.source, h.page, t) for h, t in zip(hits, texts, strict=True)]
    extra = {"grammar": ex.span_grammar([t for _, t in units], none=()), "logprobs": True,
             "top_logprobs": TOP_LOGPROBS}
    signals = {k: round(v, 4) for k, v in select.signals(ranked, relevance).items()}
    return Prepared(extract_messages(question, passages, history), extra, texts, units,
                    select.confidence(signals), signals)


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
    first: float | None = None  # when the first words went to the person asking
    by: str = "model"  # who marked the quoted words: "model" (grammar) or "reader"

    @property
    def sentence(self) -> str:
        return " ".join(p for p in self.parts if p)

    def abstained(self, min_confidence: float) -> bool:
        return self.none or not self.span or self.confidence < min_confidence


def unanswered(prepared: Prepared) -> Quote:
    """The abstention decided before the model is asked: the passages' best sentence is too
    unlikely to answer (`prepared.confidence`)."""
    return Quote("", False, GenerationStats(), signals=dict(prepared.signals),
                 confidence=prepared.confidence)


def read_reply(reply: str, prepared: Prepared, stats: GenerationStats) -> Quote | None:
    """Locate a reply and attach the scores; None when it is no quote at all (the grammar was
    ignored). A reply cut off by the length cap may end in half a word: that word is
    dropped."""
    text = reply.strip()
    if text in NONE_REPLIES:
        return Quote(reply, True, stats, confidence=prepared.confidence,
                     signals=prepared.signals | ex.span_signals(stats.logprobs, 0,
                                                                len(prepared.texts)))
    units = [t for _, t in prepared.units]
    span = ex.find_span(text, units)
    if span is None and " " in text:
        span = ex.find_span(text.rsplit(" ", 1)[0], units)
    if span is None:
        return None
    parts = ex.sentence_around(units[span.passage], span)
    quoted = ex.clean_span(parts[1])
    holders = sum(f" {quoted.lower()} " in f" {t.lower()} " for t in prepared.texts)
    signals = prepared.signals | ex.span_signals(stats.logprobs, holders, len(prepared.texts))
    return Quote(reply, False, stats, quoted, parts, prepared.units[span.passage][0] + 1,
                 signals, prepared.confidence)


def leads(read: Read, found: dict[str, Found | None] | None = None) -> Judge:
    """The reader as a sentence scorer for select.py: how far each sentence's best span leads
    its "no answer here" score. Each sentence's span goes into `found`, where given, so that
    `read_span` need not read the best sentence again."""

    def score(question: str, sentences: Sequence[str]) -> np.ndarray:
        spans = read(question, sentences)
        if found is not None:
            found.update(zip(sentences, spans, strict=True))
        return np.array([f.lead if f is not None else NO_LEAD for f in spans], dtype=np.float64)

    return score


def read_span(question: str, prepared: Prepared, read: Read,
              known: Mapping[str, Found | None] | None = None) -> Quote | None:
    """The reader's quote: its best span of the kept sentences (the span leading its "no
    answer here" score most), or None when it sees none of them (cut off by its window).
    Units in `known` (what `leads` found while ranking) are not read again."""
    units = [t for _, t in prepared.units]
    known = known or {}
    missing = [t for t in units if t not in known]
    now = dict(zip(missing, read(question, missing), strict=True)) if missing else {}
    spans = [known[t] if t in known else now[t] for t in units]
    found = [(f.lead, i, f) for i, f in enumerate(spans) if f is not None]
    if not found:
        return None
    lead, i, span = max(found, key=lambda x: x[0])
    text = units[i]  # the span's words, then the sentence around them as for the model's
    words = ex.Span(i, len(text[:span.start].split()), len(text[:span.end].split()))
    parts = ex.sentence_around(text, words)
    return Quote(parts[1], False, GenerationStats(), ex.clean_span(parts[1]), parts,
                 prepared.units[i][0] + 1, prepared.signals | {"reader_lead": round(lead, 4)},
                 prepared.confidence, by="reader")


def pieces(found: Quote, short: bool, streamed: bool) -> list[tuple[str, bool]]:
    """What the person asking still gets once the quote is decoded, as (text, is the quote): with
    `short`, the quote unless it streamed already, then its [n]; else the sentence around it,
    the quoted words apart so a terminal can highlight them."""
    if short:
        out = [] if streamed else [(found.span, True)]
        return [*out, (f" [{found.n}]", False)]
    before, words, after = found.parts
    out = [(before + " ", False)] if before else []
    return [*out, (words, True), ((" " + after if after else "") + f" [{found.n}]", False)]


def citation(found: Quote, hits: Sequence[Hit]) -> cit.Citation:
    """The passage the quote came from; supported by construction (its words are in it)."""
    hit = hits[found.n - 1]
    return cit.Citation(n=found.n, chunk_id=hit.chunk_id, source=hit.source, page=hit.page,
                        text=hit.text, supported=True, by="quote",
                        overlap=cit.overlap(found.span, hit.text))
