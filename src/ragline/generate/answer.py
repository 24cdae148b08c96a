"""The `ask` pipeline: retrieve, decide whether to answer, generate, check citations.

By default the answer is extractive (generate/quote.py): the best sentence of the passages,
its answering words marked by the packaged span reader (embed/reader.py) for a packaged
model, or by the model (`span_by="model"`, the default for a model the user chose), which may
only quote a run of those words under a grammar; the answer is that sentence (`--short`: the
marked words), cited by the passage it came from. A backend without grammars (an
OpenAI-compatible server that refuses or ignores one) gets the free-text path below, and the
result says so in `note`.

Abstention, in both modes: before generation, when the best passage's dense (cosine) score is
under `min_score`, nothing relevant was found, so we do not ask the model at all (it would
only be tempted to invent). Then, extractive: when the passages' best sentence is unlikely to
answer (its confidence, generate/select.py, under `min_confidence`) the model is not asked
either, and when asked it may say NONE; free text: the model's first sentence says the
documents do not hold the answer. Either way the answer becomes ABSTAIN_TEXT and `abstained`
is true.

Free text: generation has two turns (see generate/prompt.py): a draft sentence, kept from the
person asking, then the words that answer, cut from it, which stream to them followed by the [n]
of the passage that holds them (citations.source_for). Only the best `prompt_k` of the k
retrieved passages go in the prompt: on SQuAD the gold passage is nearly always among the first
three, and each passage costs ~180 prompt tokens, which dominate the time to first token on
CPU. The drafts are capped (DRAFT_PIECES) by closing the stream, which stops the model.

One `ask` keeps its own state (the model calls it made, their stats and timings) in locals and
in what it returns, so several askers may share one index and one backend: a server makes one
per request. `cancel` stops an answer between two streamed pieces.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ragline.generate import citations as cit
from ragline.generate import quote
from ragline.generate.base import (
    Generation,
    GenerationCancelled,
    GenerationStats,
    LLMBackend,
    LLMError,
    Message,
)
from ragline.generate.factory import (
    DEFAULT_MIN_CONFIDENCE,
    DEFAULT_MIN_SCORE,
    packaged_judge,
    packaged_reader,
    reader_marks_spans,
)
from ragline.generate.prompt import CONCISE_PREFILL, build_messages, concise_messages
from ragline.generate.select import Judge
from ragline.types import Hit, SearchResult

if TYPE_CHECKING:
    from ragline.embed.reader import Found

ABSTAIN_TEXT = "I cannot answer that from the documents."
SPAN_BY = ("reader", "model")  # who marks the answer's words in the extractive path

REPAIR_PROMPT = ("Write the answer itself in words, as found in the documents, then the "
                 "document number in brackets.")
DRAFT_PIECES = 64  # streamed pieces (about tokens) of the hidden draft; one sentence fits
CONCISE_PIECES = 32  # ... of the short answer
_BARE = re.compile(r"\[[\d,;\s]*\]?|[\s.,;:]")


def has_words(text: str) -> bool:
    """False for "", "[1]", " [2, 3]." or an unfinished "[1": nothing a reader could use."""
    return bool(_BARE.sub("", text))


_REFUSAL = re.compile(
    r"(documents?|passages?|context|text|sources?)\s+(provided\s+)?(do|does|did)\s*(not|n't)\s+"
    r"(contain|mention|provide|include|say|specify|state|have|give|answer|discuss)"
    r"|\bno (information|mention|answer)\b|\bnot (mentioned|provided|specified|stated|found|"
    r"given|available|contained)\b|\bcannot (be )?(answer|determine|find)|\bcan't "
    r"(answer|determine|find)|\bunable to (answer|find|determine)|\bi (do not|don't) know\b",
    re.IGNORECASE)


def model_declined(answer: str) -> bool:
    """True when the answer opens by saying the documents do not hold it."""
    first = cit.sentences(cit.strip_markers(answer))
    return bool(first) and bool(_REFUSAL.search(first[0]))


def _unprefix(text: str, prefix: str) -> str:
    """The text without a leading `prefix` (a server that echoes the prefilled reply)."""
    head = text.lstrip()
    if prefix and head.lower().startswith(prefix.lower()):
        return head[len(prefix):]
    return text


def _cut_from(short: str, draft: str, hits: Sequence[Hit]) -> bool:
    """Whether a short answer is usable: it has words, does not decline, and its words are in
    the draft or the passages. A 0.5B model sometimes replies with a passage number ("1") or
    a word of its own ("stolen" for "steal") instead of a span; the draft is better then."""
    if not has_words(short) or model_declined(short):
        return False
    seen = cit.content_tokens(cit.strip_markers(draft))
    for h in hits:
        seen |= cit.content_tokens(h.text)
    return cit.content_tokens(short) <= seen


@dataclass
class _Run:
    """One `ask` call's own state: whether to stop, and the stats of each model call."""

    cancel: threading.Event | None = None
    calls: list[GenerationStats] = field(default_factory=list)

    def check(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise GenerationCancelled("the answer was cancelled")


class Searchable(Protocol):
    """What the asker needs of an index: `Index.search` (query, k, mode, where)."""

    def search(self, query: str, k: int = 5, **kwargs: Any) -> SearchResult: ...


@dataclass
class AskResult:
    question: str
    answer: str
    abstained: bool
    citations: list[cit.Citation]
    retrieved: list[Hit]
    model: str
    timings: dict[str, float]
    dropped_citations: list[int] = field(default_factory=list)
    abstain_reason: str | None = None  # "retrieval" | "model"
    raw_answer: str = ""
    relevance: float = 0.0  # the dense cosine of the best passage, which the gate compares
    draft: str = ""  # the model's first, full-sentence reply, when the answer was cut from it
    completion_tokens: int = 0  # generated over all the model calls of this answer
    prompt_tokens: int = 0  # prompt tokens over those calls, where the backend counts them
    mode: str = "free"  # "extractive": quoted under a grammar; "free": written by the model
    span_by: str = ""  # extractive: who marked the quoted words, "reader" or "model"
    span: str = ""  # extractive: the quoted words (the short answer)
    sentence: str = ""  # extractive: the passage sentence that holds them
    confidence: float | None = None  # extractive: the abstention score (see generate/quote.py)
    signals: dict[str, float] = field(default_factory=dict)  # what the score is made of
    note: str | None = None  # e.g. why extractive decoding was not used

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.answer,
            "abstained": self.abstained,
            "abstain_reason": self.abstain_reason,
            "relevance": round(self.relevance, 4),
            "citations": [c.to_dict() for c in self.citations],
            "dropped_citations": self.dropped_citations,
            "retrieved": [h.to_dict() for h in self.retrieved],
            "model": self.model,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "mode": self.mode,
            "span_by": self.span_by,
            "span": self.span,
            "sentence": self.sentence,
            "confidence": None if self.confidence is None else round(self.confidence, 4),
            "signals": self.signals,
            "note": self.note,
        }


class Asker:
    """One index + one backend; `ask` answers one question, `chat` keeps the conversation."""

    def __init__(self, index: Searchable, backend: LLMBackend, k: int = 5,
                 min_score: float = DEFAULT_MIN_SCORE, stream: bool = True,
                 history_turns: int = 3, prompt_k: int = 3, concise: bool = False,
                 where: str | Mapping[str, Any] | None = None, extractive: bool = True,
                 per_passage: int = quote.PER_PASSAGE,
                 min_confidence: float = DEFAULT_MIN_CONFIDENCE,
                 budget: int | None = None, judge: Judge | None = None,
                 span_by: str | None = None, reader: quote.Read | None = None) -> None:
        self.index = index
        self.where = where  # a metadata filter every search of this asker applies
        self.backend = backend
        self.k = k
        self.min_score = min_score
        self.stream = stream
        self.history_turns = history_turns
        self.prompt_k = prompt_k  # passages in the prompt (the best of the k retrieved)
        self.concise = concise  # answer with the words that answer, not a sentence
        #: quote a span under a grammar where the backend supports it (generate/quote.py)
        self.extractive = extractive
        self.per_passage = per_passage  # sentences per passage in the extractive prompt
        self.min_confidence = min_confidence  # abstain below this extractive score
        #: ... and the most over all passages (0: no limit; None: see quote.BUDGET_*)
        self.budget = budget if budget is not None else (
            quote.BUDGET_SHORT if concise else quote.BUDGET_SENTENCE)
        self.history: list[tuple[str, str]] = []  # (question, answer) of earlier chat turns
        #: scores each sentence for the question (select.py); the packaged one by default
        self.judge = judge if judge is not None else packaged_judge()
        if span_by is None:
            span_by = "reader" if reader_marks_spans(backend) else "model"
        if span_by not in SPAN_BY:
            raise ValueError(f"span_by must be one of {', '.join(SPAN_BY)}, not {span_by!r}")
        self.span_by = span_by
        #: the span reader (embed/reader.py): its lead of each sentence is a feature of the
        #: ranking, and with span_by="reader" it marks the answer's words in the best one
        #: (else, or where there is none, the model quotes them under the grammar)
        self.reader = reader if reader is not None else packaged_reader()

    def retrieve(self, question: str, follow_up: bool) -> list[Hit]:
        """Search the question; in a chat, also the question joined to the previous one, so a
        follow-up like "and when was that?" finds the passages of the topic under discussion."""
        hits = {h.chunk_id: h for h in self._search(question, self.k).hits}
        if follow_up and self.history:
            joined = f"{self.history[-1][0]} {question}"
            for h in self._search(joined, self.k).hits:
                if h.chunk_id not in hits or hits[h.chunk_id].score < h.score:
                    hits[h.chunk_id] = h
        ranked = sorted(hits.values(), key=lambda h: h.score, reverse=True)[: self.k]
        for rank, h in enumerate(ranked, start=1):
            h.rank = rank
        return ranked

    def _search(self, query: str, k: int, **kwargs: Any) -> SearchResult:
        if self.where is not None:
            kwargs["where"] = self.where
        return self.index.search(query, k=k, **kwargs)

    def relevance(self, question: str, follow_up: bool) -> float:
        """How relevant the best passage is, as a cosine similarity.

        The default search fuses z-scored dense and BM25 scores, which say nothing about
        relevance on their own, so the gate asks the same index for its dense top hit."""
        queries = [question]
        if follow_up and self.history:
            queries.append(f"{self.history[-1][0]} {question}")
        return max([float("-inf")] + [h.score for q in queries
                                      for h in self._search(q, 1, mode="dense").hits])

    def ask(self, question: str, on_text: Callable[[str], None] | None = None,
            follow_up: bool = False, cancel: threading.Event | None = None,
            on_span: Callable[[str], None] | None = None) -> AskResult:
        """Answer from the index only; `on_text` receives the answer as it streams.

        When `cancel` is set, the model is stopped at its next piece and GenerationCancelled
        is raised (the history is left as it was). In extractive mode the quoted words of a
        sentence answer go to `on_span` when given (a terminal highlights them)."""
        run = _Run(cancel)
        t0 = time.perf_counter()
        hits = self.retrieve(question, follow_up)
        best = self.relevance(question, follow_up)
        t1 = time.perf_counter()
        timings = {"retrieve_ms": (t1 - t0) * 1e3, "first_token_ms": 0.0, "total_ms": 0.0,
                   "tokens_per_s": 0.0}
        if not hits or best < self.min_score:
            if on_text:
                on_text(ABSTAIN_TEXT)
            timings["total_ms"] = (time.perf_counter() - t0) * 1e3
            return AskResult(question, ABSTAIN_TEXT, True, [], hits, self.backend.name,
                             timings, abstain_reason="retrieval", relevance=best)
        shown_hits = hits[: max(1, self.prompt_k)]
        history = self._history_messages() if follow_up else []
        note = None
        if self.extractive and getattr(self.backend, "grammar", False):
            try:
                quoted = self._quote(question, shown_hits, history, best, on_text, on_span,
                                     run)
            except LLMError as e:
                if "HTTP 400" not in str(e):
                    raise
                quoted, note = None, f"the LLM server refused a grammar ({e})"
            if quoted is not None:
                return self._finish(self._quoted_result(question, hits, quoted, best, timings,
                                                        t0), run)
            self.backend.grammar = False  # type: ignore[attr-defined]  # a fact of the server
            note = note or "the LLM server ignored the grammar"
            note += ": answered without extractive decoding"
        messages = build_messages(question, shown_hits, history)
        raw, draft, first, t_end = self._generate(messages, shown_hits, on_text, run)
        timings["first_token_ms"] = ((first or t_end) - t0) * 1e3
        timings["total_ms"] = (t_end - t0) * 1e3
        timings["tokens_per_s"] = self._decode_rate(run.calls[-1], t_end)
        report = cit.check(raw, shown_hits)
        if model_declined(raw) or not cit.strip_markers(raw):
            result = AskResult(question, ABSTAIN_TEXT, True, [], hits, self.backend.name,
                               timings, report.dropped, "model", raw, best, draft)
        else:
            result = AskResult(question, report.answer, False, report.citations, hits,
                               self.backend.name, timings, report.dropped, None, raw, best,
                               draft)
        result.note = note
        return self._finish(result, run)

    def _finish(self, result: AskResult, run: _Run) -> AskResult:
        result.completion_tokens = sum(c.completion_tokens for c in run.calls)
        result.prompt_tokens = sum(c.prompt_tokens or 0 for c in run.calls)
        self.history.append((result.question, result.answer))
        return result

    def _quote(self, question: str, hits: Sequence[Hit], history: Sequence[Message],
               relevance: float, on_text: Callable[[str], None] | None,
               on_span: Callable[[str], None] | None, run: _Run) -> quote.Quote | None:
        """The extractive answer (generate/quote.py), or None when the backend wrote text that
        is not a quote (a server that ignores grammars)."""
        embed = getattr(getattr(self.index, "embedder", None), "embed", None)
        spans: dict[str, Found | None] = {}  # what the reader found ranking, for its quote
        lead = quote.leads(self.reader, spans) if self.reader is not None else None
        prepared = quote.prepare(question, hits, history, self.per_passage, embed,
                                 self.budget, relevance, self.judge, lead)
        if prepared.confidence < self.min_confidence:
            return quote.unanswered(prepared)  # the model is not asked (see generate/quote)
        found = None
        if self.span_by == "reader" and self.reader is not None:
            found = quote.read_span(question, prepared, self.reader, spans)
        if found is None:
            stream = on_text if self.concise else None
            reply, first = self._stream_words(run, prepared.messages, stream,
                                              quote.SPAN_PIECES, extra=prepared.extra,
                                              hold=quote.NONE_REPLIES)
            found = quote.read_reply(reply, prepared, run.calls[-1])
            if found is None:
                return None
            found.first = first
        if found.abstained(self.min_confidence) or on_text is None:
            return found
        streamed = found.first is not None
        for piece, is_span in quote.pieces(found, self.concise, streamed):
            run.check()  # the person may have gone after the previous piece
            ((on_span or on_text) if is_span else on_text)(piece)
            found.first = found.first or time.perf_counter()
        return found

    def _quoted_result(self, question: str, hits: list[Hit], found: quote.Quote, best: float,
                       timings: dict[str, float], t0: float) -> AskResult:
        t_end = time.perf_counter()
        timings["first_token_ms"] = ((found.first or t_end) - t0) * 1e3
        timings["total_ms"] = (t_end - t0) * 1e3
        timings["tokens_per_s"] = self._decode_rate(found.stats, t_end)
        name = self.backend.name
        if found.abstained(self.min_confidence):
            reason = "model" if found.none else "confidence"
            r = AskResult(question, ABSTAIN_TEXT, True, [], hits, name, timings,
                          abstain_reason=reason, raw_answer=found.reply, relevance=best)
        else:
            answer = found.span if self.concise else found.sentence
            r = AskResult(question, f"{answer} [{found.n}]", False,
                          [quote.citation(found, hits)], hits, name, timings,
                          raw_answer=found.reply, relevance=best, draft=found.sentence)
            r.span, r.sentence = found.span, found.sentence
        r.mode, r.confidence, r.signals = "extractive", found.confidence, found.signals
        r.span_by = "" if found.abstained(self.min_confidence) else found.by
        return r

    def _generate(self, messages: Sequence[Message], hits: Sequence[Hit],
                  on_text: Callable[[str], None] | None, run: _Run
                  ) -> tuple[str, str, float | None, float]:
        """(answer, draft, first shown, end): the draft, then the answer cut from it, streamed.

        Qwen 0.5B sometimes replies with only a marker ("[1]"): it points at the passage
        instead of answering. Then we ask once more in the same conversation (the prompt is
        in llama.cpp's cache, so this costs only the new tokens) for the answer in words.
        Without `concise` the draft itself is the answer and streams as it comes."""
        out = on_text if not self.concise else None
        draft, first = self._stream_words(run, messages, out, DRAFT_PIECES)
        if not has_words(draft):
            repair = [*messages, {"role": "assistant", "content": draft or "?"},
                      {"role": "user", "content": REPAIR_PROMPT}]
            draft, first = self._stream_words(run, repair, out, DRAFT_PIECES)
        draft = draft.strip()
        if not self.concise or model_declined(draft) or not has_words(draft):
            return draft, draft, first, time.perf_counter()
        short, first = self._stream_words(run, concise_messages(messages, draft), on_text,
                                          CONCISE_PIECES, strip=CONCISE_PREFILL)
        short = cit.strip_markers(short).strip().rstrip(".")
        if not _cut_from(short, draft, hits) or len(short) >= len(draft):
            if on_text:  # nothing shorter came: the draft is the answer
                on_text(draft)
            return draft, draft, first or time.perf_counter(), time.perf_counter()
        n = cit.source_for(short, draft, hits)
        tail = f" [{n}]" if n else ""
        if on_text and tail:
            on_text(tail)
        return short + tail, draft, first, time.perf_counter()

    def _stream_words(self, run: _Run, messages: Sequence[Message],
                      on_text: Callable[[str], None] | None, limit: int | None = None,
                      strip: str = "", extra: Mapping[str, Any] | None = None,
                      hold: Sequence[str] = ()) -> tuple[str, float | None]:
        """Stream a reply to `on_text` once it has words (and without an echoed `strip`
        prefix, and not while it could still become one of `hold`); stop after `limit`
        pieces, or when `run.cancel` is set, by closing the stream, which stops the model.
        `extra` request fields (a grammar) go to backends that take them."""
        pieces: list[str] = []
        shown: float | None = None  # when the first words were handed to the person asking
        run.check()
        kwargs = {"extra": extra} if extra else {}
        stream = Generation.of(self.backend.generate(messages, stream=self.stream, **kwargs))
        run.calls.append(stream.stats)
        try:
            for piece in stream:
                run.check()
                pieces.append(piece)
                if shown is None:
                    head = _unprefix("".join(pieces), strip)
                    if not has_words(head) or (strip and strip.startswith(head.strip())) \
                            or any(h.startswith(head.strip()) for h in hold):
                        continue
                    shown = time.perf_counter()
                    piece = head.lstrip()
                if on_text:
                    on_text(piece)
                if limit is not None and len(pieces) >= limit:
                    break
        finally:
            stream.close()
        return _unprefix("".join(pieces), strip), shown

    def _decode_rate(self, stats: GenerationStats, t_end: float) -> float:
        """Tokens/s of the last call: after its first piece when streamed (decode speed),
        else over the whole call (prefill included: that is all a non-streamed call shows)."""
        tokens, first = stats.completion_tokens, stats.first_piece
        if self.stream and first is not None and tokens > 1 and t_end > first:
            return (tokens - 1) / (t_end - first)
        elapsed = t_end - stats.started
        return tokens / elapsed if elapsed > 0 else 0.0

    def _history_messages(self) -> list[Message]:
        out: list[Message] = []
        for q, a in self.history[-self.history_turns:]:
            out.append({"role": "user", "content": f"Question: {q}"})
            out.append({"role": "assistant", "content": a})
        return out
