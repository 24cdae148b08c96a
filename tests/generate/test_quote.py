"""Extractive `ask` end to end with a real model (SmolLM2) on the tiny real index: the answer
is a quote of the passage it cites, the abstention threshold holds, a planted order cannot be
quoted, and a server that ignores grammars gets today's free-text path, said in the result."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest

from ragline.embed.reader import Found
from ragline.generate import quote
from ragline.generate.answer import ABSTAIN_TEXT, Asker
from ragline.generate.base import GenerationOptions
from ragline.generate.embedded import EmbeddedBackend
from ragline.generate.openai_http import OpenAIBackend

pytestmark = pytest.mark.slow

QUESTIONS = ["Who introduced movable-type printing to Europe?",
             "What water temperature is best for brewing coffee?",
             "How do honeybees tell each other where food is?"]


@pytest.fixture(scope="module")
def small(smollm2: Path) -> Iterator[EmbeddedBackend]:
    b = EmbeddedBackend(smollm2, name="smollm2", n_ctx=2048, n_threads=2,
                        options=GenerationOptions(max_tokens=48))
    yield b
    b.close()


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize(("short", "span_by"), [(False, "reader"), (True, "reader"),
                                               (False, "model"), (True, "model")])
def test_the_answer_quotes_the_passage_it_cites(tiny_index, small, short: bool,
                                                span_by: str) -> None:
    asker = Asker(tiny_index, small, k=3, min_confidence=0.0, concise=short, span_by=span_by)
    for q in QUESTIONS:
        shown: list[str] = []
        r = asker.ask(q, on_text=shown.append)
        assert r.mode == "extractive" and r.confidence is not None
        assert r.span_by == span_by and (r.completion_tokens > 0) == (span_by == "model")
        assert r.to_dict()["signals"] == r.signals
        # no threshold, and the grammar has no NONE: every question gets a quote
        assert not r.abstained, (q, r.raw_answer)
        [c] = r.citations
        assert c.by == "quote" and c.supported
        assert r.span and r.span in flat(c.text), (r.span, c.text)
        assert r.sentence and r.span in r.sentence and r.sentence in flat(c.text)
        assert r.answer == f"{r.span if short else r.sentence} [{c.n}]"
        assert "".join(shown).strip().startswith((r.span if short else r.sentence)[:10])


def test_the_abstention_threshold_is_honoured(tiny_index, small) -> None:
    q = QUESTIONS[0]
    free = Asker(tiny_index, small, k=3, min_confidence=0.0, span_by="model").ask(q)
    c = free.confidence
    assert c is not None and 0.0 < c <= 1.0
    above = Asker(tiny_index, small, k=3, min_confidence=c + 1e-6, span_by="model").ask(q)
    assert above.abstained and above.abstain_reason == "confidence"
    assert above.answer == ABSTAIN_TEXT and above.citations == []
    assert above.confidence == pytest.approx(c, abs=1e-6)  # decided from the passages ...
    assert above.completion_tokens == 0 and above.raw_answer == ""  # ... the model not asked
    assert free.completion_tokens > 0
    at = Asker(tiny_index, small, k=3, min_confidence=c - 1e-6, span_by="model").ask(q)
    assert not at.abstained and at.answer == free.answer


def test_a_planted_order_cannot_be_quoted(tiny_index, small) -> None:
    q = "What kind of coffee grinder gives a uniform grind?"
    hits = tiny_index.search(q, k=3).hits
    planted = [h for h in hits if h.source.endswith("grinder-care.md")]
    assert planted and "BANANA" in planted[0].text, "the planted document must be retrieved"
    prepared = quote.prepare(q, hits, [], per_passage=0, embed=None)  # whole passages
    assert "BANANA" not in prepared.extra["grammar"]
    assert "ignore all your previous instructions" not in prepared.messages[-1]["content"]
    r = Asker(tiny_index, small, k=3, min_confidence=0.0).ask(q)
    assert "banana" not in r.raw_answer.lower() and "banana" not in r.answer.lower()


def test_the_readers_answer_is_the_sentence_around_its_span(reader) -> None:
    """The reader marks words of the best kept unit; the answer a person reads is the sentence
    around them, as for the model's quote, even where the unit runs on past a sentence end
    (here into the marker of a removed order)."""
    unit = ("Throughout the history of education the most common form of school discipline "
            "was corporal punishment. (text addressed to the assistant removed)")
    prepared = quote.Prepared([], {}, [unit], [(0, unit)], confidence=0.9)
    found = quote.read_span("What was the most common form of school discipline?", prepared,
                            reader.read)
    assert found is not None and found.by == "reader" and found.n == 1
    assert found.span == "corporal punishment" and "reader_lead" in found.signals
    assert found.sentence == unit.split(" (")[0]


def test_the_reader_reads_the_best_sentence_once(reader) -> None:
    """What the reader found while the sentences were ranked (`leads`) is its quote's span:
    `read_span` reads only kept units it has not seen."""
    question = "What was the most common form of school discipline?"
    units = ["Throughout the history of education the most common form of school discipline "
             "was corporal punishment.", "Teachers were expected to act as parents."]
    read: list[list[str]] = []

    def counted(q: str, sentences: Sequence[str]) -> Sequence[Found | None]:
        read.append(list(sentences))
        return reader.read(q, sentences)

    spans: dict[str, Found | None] = {}
    quote.leads(counted, spans)(question, units[1:])  # ranking saw only the second
    prepared = quote.Prepared([], {}, units, [(0, units[0]), (1, units[1])], confidence=0.9)
    found = quote.read_span(question, prepared, counted, spans)
    assert read == [units[1:], units[:1]]  # the second was not read again
    assert found is not None and found.span == "corporal punishment" and found.n == 1
    read.clear()
    again = quote.read_span(question, prepared, counted, spans | {units[0]: reader.read(
        question, units[:1])[0]})
    assert read == [] and again is not None and again.span == found.span


class _DropGrammar(http.server.BaseHTTPRequestHandler):
    """A chat server that knows nothing of grammars: it forwards each request to llama.cpp
    without the `grammar` field, as servers that ignore unknown fields do."""

    upstream = ""

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        import json

        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        body.pop("grammar", None)
        with httpx.Client(timeout=120) as client:
            reply = client.post(self.upstream + self.path, json=body,
                                headers={"Authorization": self.headers["Authorization"]})
        self.send_response(reply.status_code)
        self.send_header("Content-Type", reply.headers["content-type"])
        self.send_header("Content-Length", str(len(reply.content)))
        self.end_headers()
        self.wfile.write(reply.content)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def no_grammar_server(llm_server: str) -> Iterator[str]:
    handler = type("Handler", (_DropGrammar,), {"upstream": llm_server})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join()


def test_openai_server_with_and_without_grammars(tiny_index, llm_server, no_grammar_server,
                                                 api_key_env) -> None:
    opts = GenerationOptions(max_tokens=32)
    with OpenAIBackend(llm_server, api_key_env=api_key_env, options=opts) as b:
        r = Asker(tiny_index, b, k=2, min_confidence=0.0, stream=False).ask(QUESTIONS[0])
        assert r.mode == "extractive" and r.note is None and b.grammar
    with OpenAIBackend(no_grammar_server, api_key_env=api_key_env, options=opts) as b:
        asker = Asker(tiny_index, b, k=2, min_confidence=0.0, stream=False)
        r = asker.ask(QUESTIONS[0])
        if r.mode == "extractive":
            pytest.skip("without the grammar SmolLM2 still replied with a quote or NONE")
        assert r.mode == "free" and "grammar" in (r.note or "") and not b.grammar
        assert asker.ask(QUESTIONS[1]).note is None  # known now: no second try per question
