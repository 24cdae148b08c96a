"""The generation queue: a full queue is refused with 503, searches never wait for the model,
and a client that goes away stops its generation so the next request is served."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from serve_helpers import COFFEE, done_event, metric, read_events, wait_until

from ragline.generate.base import Generation, LLMError, Message

ASK = {"question": COFFEE, "k": 2}


class HeldModel:
    """A model that answers only when the test lets it: it fills the queue deterministically."""

    name = "held"

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def generate(self, messages: Sequence[Message], stream: bool = True) -> Generation:
        def pieces() -> Iterator[str]:
            self.entered.set()
            if not self.release.wait(120):
                raise LLMError("the test never released the model")
            yield "Between 90 and 96 degrees Celsius [1]."

        return Generation(pieces())

    def close(self) -> None:
        self.release.set()


class Gated:
    """The real model, paused before its 4th piece until the test says go on; records how
    each of its streams ended: (pieces yielded, "exhausted" | "closed")."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self.name = backend.name
        self.gate = True
        self.paused = threading.Event()
        self.resume = threading.Event()
        self.ends: list[tuple[int, str]] = []

    def generate(self, messages: Sequence[Message], stream: bool = True) -> Generation:
        inner = self.backend.generate(messages, stream)

        def pieces() -> Iterator[str]:
            n, how = 0, "closed"
            try:
                for piece in inner:
                    if self.gate and n == 3:
                        self.paused.set()
                        assert self.resume.wait(120), "the test never resumed the model"
                    n += 1
                    yield piece
                how = "exhausted"
            finally:
                inner.close()
                self.ends.append((n, how))

        return Generation(pieces(), inner.stats)

    def close(self) -> None:
        self.resume.set()


def test_a_full_queue_is_503_with_retry_after(make_server: Any) -> None:
    model = HeldModel()
    server = make_server(model, max_queue=1)
    with server.client() as a, server.client() as b, server.client() as c, \
            a.stream("POST", "/v1/ask", json=ASK) as first:
        assert first.status_code == 200  # headers sent: it holds the model's turn
        assert model.entered.wait(60)
        with b.stream("POST", "/v1/ask", json=ASK) as second:
            assert second.status_code == 200  # it waits: 1 waiting is allowed
            refused = c.post("/v1/ask", json=ASK)
            chat = c.post("/v1/chat/completions",
                          json={"messages": [{"role": "user", "content": COFFEE}]})
            # the model is busy, yet searches are answered
            search = c.post("/v1/search", json={"query": "coffee"})
            text = server.metrics()
            model.release.set()
            first_events = read_events(first)
            second_events = read_events(second)
    for r in (refused, chat):
        assert r.status_code == 503, r.text
        assert int(r.headers["retry-after"]) >= 1
        assert "busy" in r.json()["error"]
    assert search.status_code == 200 and search.json()["results"]
    assert metric(text, "ragline_generation_queue_waiting") == 1
    assert metric(text, "ragline_generation_running") == 1
    assert metric(text, "ragline_generation_rejected_total") == 2
    for events in (first_events, second_events):
        done = done_event(events)
        assert done["model"] == "held" and "90" in done["answer"]
    # the queue is empty again: a new request is served at once
    with server.client() as c, c.stream("POST", "/v1/ask", json=ASK) as r:
        assert done_event(read_events(r))["abstained"] is False
    assert metric(server.metrics(), "ragline_generation_queue_waiting") == 0


def test_a_client_that_leaves_stops_its_generation(make_server: Any, llm: Any) -> None:
    model = Gated(llm)
    server = make_server(model)
    with server.client() as c, c.stream("POST", "/v1/ask", json={"question": COFFEE}) as r:
        assert r.status_code == 200
        assert model.paused.wait(120)  # 3 pieces generated, the 4th held back
    # the connection is closed; once the server has noticed, let the model go on
    wait_until(lambda: metric(server.metrics(), "ragline_answers_abandoned_total") == 1,
               what="the server to notice the client left")
    model.resume.set()
    model.gate = False
    with server.client() as c, c.stream("POST", "/v1/ask", json={"question": COFFEE}) as r:
        events = read_events(r)
    # the next request got the model: its answer is complete
    assert done_event(events)["model"] == "smollm2"
    assert any(name == "token" for name, _ in events)
    # the first stream was closed by the server after one more piece, not run to its end
    assert model.ends[0] == (4, "closed")
    text = server.metrics()
    assert metric(text, "ragline_generations_total", outcome="cancelled") == 1
    assert metric(text, "ragline_generations_total", outcome="done") >= 1
    assert metric(text, "ragline_generation_running") == 0


def test_an_error_mid_stream_is_an_error_event(make_server: Any) -> None:
    class Failing(HeldModel):
        name = "failing"

        def generate(self, messages: Sequence[Message], stream: bool = True) -> Generation:
            def pieces() -> Iterator[str]:
                yield "Between"
                raise LLMError("the model server went away")

            return Generation(pieces())

    server = make_server(Failing())
    with server.client() as c, c.stream("POST", "/v1/ask", json=ASK) as r:
        events = read_events(r)
    assert [name for name, _ in events] == ["token", "error"]
    assert json.loads(events[-1][1]) == {"error": "the model server went away"}
    # the model's turn was handed back
    with server.client() as c, c.stream("POST", "/v1/ask", json=ASK) as r:
        assert read_events(r)[-1][0] == "error"
    assert metric(server.metrics(), "ragline_generations_total", outcome="error") == 2
