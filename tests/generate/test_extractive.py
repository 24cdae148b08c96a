"""The span grammar: its language is exactly NONE plus the passages' contiguous word spans.

Checked two ways: a property test that reads the GBNF text with a small independent matcher
(below; it knows only the GBNF subset the builder writes: literals, rule names, `|`, groups,
`?`), and llama.cpp itself (SmolLM2) decoding under the grammar."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ragline.generate import extractive as ex

# ---- a GBNF-subset matcher, written from the GBNF spec, not from the builder ---------------
_TOKEN = re.compile(r'\s*("(?:\\.|[^"\\])*"|[A-Za-z0-9_-]+|[()|?])')
_UNESCAPE = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}


def _parse(grammar: str) -> dict[str, object]:
    rules: dict[str, object] = {}
    for line in grammar.strip().splitlines():
        name, _, body = line.partition("::=")
        tokens = _TOKEN.findall(body)
        assert "".join(tokens).replace(" ", "") == body.replace(" ", ""), line
        expr, rest = _alt(tokens)
        assert not rest, line
        rules[name.strip()] = expr
    return rules


def _alt(tokens: list[str]) -> tuple[object, list[str]]:
    options = []
    seq, tokens = _seq(tokens)
    options.append(seq)
    while tokens and tokens[0] == "|":
        seq, tokens = _seq(tokens[1:])
        options.append(seq)
    return ("alt", options), tokens


def _seq(tokens: list[str]) -> tuple[object, list[str]]:
    items = []
    while tokens and tokens[0] not in ("|", ")"):
        tok, tokens = tokens[0], tokens[1:]
        if tok == "(":
            item, tokens = _alt(tokens)
            assert tokens[0] == ")"
            tokens = tokens[1:]
        elif tok.startswith('"'):
            item = ("lit", re.sub(r"\\(.)", lambda m: _UNESCAPE[m.group(1)], tok[1:-1]))
        else:
            item = ("ref", tok)
        if tokens and tokens[0] == "?":
            item, tokens = ("opt", item), tokens[1:]
        items.append(item)
    return ("seq", items), tokens


def accepts(grammar: str, text: str) -> bool:
    rules = _parse(grammar)

    @functools.cache
    def ends(node_key: int, pos: int) -> frozenset[int]:
        node = nodes[node_key]
        kind = node[0]
        if kind == "lit":
            return frozenset([pos + len(node[1])]) if text.startswith(node[1], pos) else \
                frozenset()
        if kind == "ref":
            return ends(id(rules[node[1]]), pos)
        if kind == "opt":
            return frozenset([pos]) | ends(id(node[1]), pos)
        if kind == "alt":
            return frozenset().union(*(ends(id(o), pos) for o in node[1]))
        out = frozenset([pos])  # seq
        for item in node[1]:
            out = frozenset().union(*(ends(id(item), p) for p in out)) if out else out
        return out

    nodes: dict[int, tuple] = {}

    def register(node: object) -> None:
        nodes[id(node)] = node  # type: ignore[assignment]
        if node[0] in ("alt", "seq"):  # type: ignore[index]
            for child in node[1]:  # type: ignore[index]
                register(child)
        elif node[0] == "opt":  # type: ignore[index]
            register(node[1])  # type: ignore[index]

    for r in rules.values():
        register(r)
    return len(text) in ends(id(rules["root"]), 0)


# ---- the property test ----------------------------------------------------------------------
WORD = st.text(alphabet='abcXY19.,;:"\\()-—é', min_size=1, max_size=6).filter(
    lambda w: w.strip() == w and w)
TRAIL = ".,;:!?\"')]}"  # end punctuation a span may stop before
PASSAGE = st.lists(WORD, min_size=1, max_size=12).map(" ".join)


def spans(passages: list[str]) -> list[str]:
    out = []
    for p in passages:
        ws = p.split()
        for i in range(len(ws)):
            for j in range(i + 1, len(ws) + 1):
                out.append(" ".join(ws[i:j]))
                core = ws[j - 1].rstrip(TRAIL)
                if core and core != ws[j - 1]:
                    out.append(" ".join([*ws[i:j - 1], core]))
    return out


@settings(max_examples=60, deadline=None)
@given(st.lists(PASSAGE, min_size=1, max_size=3), st.text(
    alphabet='abcXY19.,;:"\\()-—é NOE', max_size=20))
def test_grammar_accepts_every_span_and_nothing_else(passages: list[str], other: str) -> None:
    grammar = ex.span_grammar(passages)
    for span in spans(passages):
        assert accepts(grammar, span), span
        assert ex.is_span(span, passages)
    for none in ex.NONE_REPLIES:
        assert accepts(grammar, none)
    assert accepts(grammar, other) == (other in ex.NONE_REPLIES or ex.is_span(other, passages))
    if len(passages) >= 2:  # a span may not run from one passage into the next
        joined = f"{passages[0].split()[-1]} {passages[1].split()[0]}"
        assert accepts(grammar, joined) == ex.is_span(joined, passages)
    first = passages[0].split()
    assert not accepts(grammar, "  ".join(first)) or len(first) == 1  # spacing is exact
    assert not accepts(grammar, "")


def test_find_span_and_the_sentence_around_it() -> None:
    texts = ["Tesla moved to New York. He built a lab in 1962, and sold it later.",
             "The lab was sold in 1962."]
    span = ex.find_span("1962", texts)
    assert span == ex.Span(0, 10, 11)  # "1962," without its comma, in the first passage
    before, words, after = ex.sentence_around(texts[0], span)
    assert (before, words, after) == ("He built a lab in", "1962,", "and sold it later.")
    assert ex.find_span("York. He", texts) == ex.Span(0, 4, 6)
    assert ex.find_span("New Jersey", texts) is None
    assert ex.clean_span('"1962,"') == "1962"


def test_none_probability_from_raw_top_logprobs() -> None:
    top = [{"token": "None", "logprob": -1.0}, {"token": " NO", "logprob": -2.0},
           {"token": "N", "logprob": -0.5}, {"token": "Tesla", "logprob": -0.2}]
    import math

    assert ex.none_probability(top) == pytest.approx(math.exp(-1) + math.exp(-2))


# ---- llama.cpp itself under the grammar -------------------------------------------------------
PASSAGES = ["Burr grinders crush beans between two abrasive surfaces and give a uniform grind.",
            "Johannes Gutenberg introduced movable-type printing to Europe around 1440, "
            "in Mainz."]


@pytest.mark.parametrize("question", ["Who introduced movable-type printing to Europe?",
                                      "What kind of grinder gives a uniform grind?",
                                      "What is the capital of Peru?"])
def test_llama_cpp_writes_only_passage_text(smollm2: Path, question: str) -> None:
    from ragline.generate.base import GenerationOptions
    from ragline.generate.embedded import EmbeddedBackend

    with EmbeddedBackend(smollm2, n_ctx=2048, n_threads=2,
                         options=GenerationOptions(max_tokens=48)) as llm:
        msgs = [{"role": "system", "content": "Copy the words of the text that answer."},
                {"role": "user", "content": f"{' '.join(PASSAGES)}\n\nQuestion: {question}"}]
        extra = {"grammar": ex.span_grammar(PASSAGES), "logprobs": True, "top_logprobs": 5}
        for stream in (False, True):
            gen = llm.generate(msgs, stream=stream, extra=extra)
            reply = "".join(gen)
            cut = gen.stats.finish_reason == "length"  # may end inside a word: drop it
            whole = reply.rsplit(" ", 1)[0] if cut and " " in reply else reply
            assert reply in ex.NONE_REPLIES or ex.is_span(whole, PASSAGES), reply
            assert gen.stats.logprobs and "top_logprobs" in gen.stats.logprobs[0]
