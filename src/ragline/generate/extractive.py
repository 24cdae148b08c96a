"""Extractive answers by grammar: the model may only write a contiguous run of words copied
from one of the passages it was shown, or NONE.

Why: Qwen 0.5B paraphrases, merges passages and writes long sentences; a grammar (GBNF, which
llama.cpp applies per request) makes every answer a quote by construction, so its citation is
exact (the passage the words came from) and nothing the documents do not say can be written.
The grammar has one rule per word (`p0_3 ::= "Denver" (" " p0_4)?`): a span may start at any
word and stop after any word, and never crosses from one passage into another. The words are
the passage's whitespace-separated tokens as shown to the model, punctuation attached;
`clean_span` trims the punctuation at the ends afterwards.

`find_span` maps a reply back to (passage, first word, end word): the citation, and the
sentence around the span that the default `ask` shows.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

NONE = "NONE"
#: replies that mean "not in the documents"; Qwen 0.5B's own first choice is "None"
NONE_REPLIES = (NONE, "None")

_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*$")
_EDGE_PUNCT = " \t\n.,;:!?\"'()[]{}"
_TRAIL = ".,;:!?\"')]}"  # punctuation glued to the end of a word


def words(text: str) -> list[str]:
    """The passage's words as the grammar sees them: whitespace-separated, punctuation kept."""
    return text.split()


def _literal(word: str) -> str:
    return '"' + "".join(_ESCAPES.get(ch, ch) for ch in word) + '"'


def _split_trail(word: str) -> tuple[str, str]:
    """("1962", ",") for "1962,": the punctuation a span may stop before."""
    core = word.rstrip(_TRAIL)
    return (core, word[len(core):]) if core else (word, "")


def span_grammar(passages: Sequence[str], none: Sequence[str] = NONE_REPLIES) -> str:
    """A GBNF grammar whose language is the `none` replies plus every contiguous word span of
    each passage (its words joined by single spaces), where a span may also stop just before
    the punctuation that ends its last word ("1962" of "1962, and"): the model then gets to
    end the answer there instead of being led on into the next clause."""
    rules: list[str] = []
    starts: list[str] = [_literal(n) for n in none]
    for p, text in enumerate(passages):
        ws = words(text)
        for i, w in enumerate(ws):
            name = f"p{p}w{i}"
            starts.append(name)
            core, trail = _split_trail(w)
            if i + 1 == len(ws):
                body = _literal(core) + (f" ({_literal(trail)})?" if trail else "")
            elif trail:
                body = f'{_literal(core)} ({_literal(trail)} (" " p{p}w{i + 1})?)?'
            else:
                body = f'{_literal(core)} (" " p{p}w{i + 1})?'
            rules.append(f"{name} ::= {body}")
    return "\n".join([f"root ::= {' | '.join(starts)}", *rules]) + "\n"


@dataclass(frozen=True)
class Span:
    """Where an answer was found: passage index (0-based), word range [start, end)."""

    passage: int
    start: int
    end: int


def _same(got: Sequence[str], ws: Sequence[str]) -> bool:
    """Whether `got` are the words `ws`, the last one possibly without its end punctuation."""
    return (list(got[:-1]) == list(ws[:-1])
            and got[-1] in (ws[-1], _split_trail(ws[-1])[0]))


def find_span(answer: str, passages: Sequence[str]) -> Span | None:
    """The first (best-ranked) passage that holds the answer's words in a row, or None."""
    target = words(answer)
    if not target:
        return None
    n = len(target)
    for p, text in enumerate(passages):
        ws = words(text)
        for i in range(len(ws) - n + 1):
            if _same(target, ws[i:i + n]):
                return Span(p, i, i + n)
    return None


def is_span(answer: str, passages: Sequence[str]) -> bool:
    """Whether `answer` is a contiguous word span of a passage, its words joined by single
    spaces, the last word possibly without its end punctuation: with NONE_REPLIES, the
    language of `span_grammar` (the property test's spec)."""
    return answer == " ".join(words(answer)) and find_span(answer, passages) is not None


def clean_span(answer: str) -> str:
    """The span without the punctuation glued to its first and last word."""
    return answer.strip(_EDGE_PUNCT) or answer.strip()


def sentence_around(text: str, span: Span) -> tuple[str, str, str]:
    """(before, span, after) within the sentence of `text` that holds the span's words; a span
    that runs over a sentence end keeps all the sentences it touches."""
    ws = words(text)
    lo = span.start
    while lo > 0 and not _SENTENCE_END.search(ws[lo - 1]):
        lo -= 1
    hi = span.end
    while hi < len(ws) and not _SENTENCE_END.search(ws[hi - 1]):
        hi += 1
    return (" ".join(ws[lo:span.start]), " ".join(ws[span.start:span.end]),
            " ".join(ws[span.end:hi]))


def none_probability(first_top: Sequence[dict[str, object]]) -> float:
    """The model's raw probability, at the reply's first token, of starting to say "none"
    (tokens such as "NONE", "None", "NO", "Non"), from the top log-probs llama.cpp reports
    before the grammar masks anything: an abstention signal next to the span's own."""
    total = 0.0
    for t in first_top:
        tok = str(t.get("token", "")).strip().lower()
        if len(tok) >= 2 and "none".startswith(tok):
            total += math.exp(float(t.get("logprob", -math.inf)))  # type: ignore[arg-type]
    return min(1.0, total)


def span_signals(logprobs: Sequence[dict[str, object]], holders: int,
                 shown: int) -> dict[str, float]:
    """What the model's reply says of itself, each in a fixed range: `none_p` raw P(start
    saying none) at the first token, `first_lp` / `mean_lp` the span's first-token and mean
    token log-prob, `agree` the share of shown passages holding the span's words. Kept for
    the benchmark: none of them separated answerable from unanswerable questions (AUC
    0.42-0.56, bench/qa.py)."""
    lps = [float(t.get("logprob", 0.0)) for t in logprobs]  # type: ignore[arg-type]
    top = logprobs[0].get("top_logprobs", []) if logprobs else []
    return {
        "none_p": round(none_probability(top if isinstance(top, list) else []), 4),
        "first_lp": round(lps[0], 4) if lps else 0.0,
        "mean_lp": round(sum(lps) / len(lps), 4) if lps else 0.0,
        "agree": round(holders / (shown or 1), 4),
    }
