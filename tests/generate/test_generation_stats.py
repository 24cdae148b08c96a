"""Each generation carries its own stats and timings (no state shared on the backend or the
asker), so several askers can share one backend and index; and an answer can be cancelled."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from ragline.generate.answer import Asker
from ragline.generate.base import Generation, GenerationCancelled, GenerationOptions
from ragline.generate.embedded import EmbeddedBackend

pytestmark = pytest.mark.slow

MESSAGES = [{"role": "user", "content": "Say hello."}]
QUESTIONS = ["What water temperature is best for brewing coffee?",
             "Who developed a printing press with movable metal type?"]


@pytest.fixture(scope="module")
def small(smollm2: Path):
    b = EmbeddedBackend(smollm2, name="smollm2", n_ctx=2048, n_threads=2,
                        options=GenerationOptions(max_tokens=12))
    yield b
    b.close()


def test_a_generation_carries_its_own_stats(small: EmbeddedBackend) -> None:
    first = small.generate(MESSAGES)
    assert isinstance(first, Generation)
    pieces = list(first)
    second = small.generate(MESSAGES, stream=False)
    whole = list(second)
    assert whole == ["".join(pieces)]
    s = first.stats
    assert s.completion_tokens == 12 and s.finish_reason == "length"
    assert s.started <= s.first_piece <= s.ended
    assert second.stats is not s and second.stats.completion_tokens == 12


def test_closing_early_ends_the_stats(small: EmbeddedBackend) -> None:
    gen = small.generate(MESSAGES)
    assert next(gen)
    gen.close()
    assert gen.stats.ended is not None and gen.stats.completion_tokens < 12
    assert list(gen) == []  # closed: nothing more comes


def test_askers_share_a_backend_from_threads(tiny_index, small) -> None:
    """Two answers at once on one backend and index: each gets its own passages, token count
    and timings (the backend serialises the model calls)."""
    results: dict[int, object] = {}

    def run(i: int) -> None:
        # the model marks the span, so both askers call it
        results[i] = Asker(tiny_index, small, k=2, span_by="model").ask(QUESTIONS[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(QUESTIONS))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert set(results) == {0, 1}
    for i, source in enumerate(("coffee-brewing.md", "printing-press.txt")):
        got = results[i]
        assert got.question == QUESTIONS[i] and got.retrieved[0].source.endswith(source)
        assert got.completion_tokens > 0
        t = got.timings
        assert 0 < t["retrieve_ms"] <= t["first_token_ms"] <= t["total_ms"]
        assert t["tokens_per_s"] > 0
    assert not hasattr(Asker(tiny_index, small), "_call_start")


def test_an_answer_can_be_cancelled(tiny_index, small) -> None:
    asker = Asker(tiny_index, small, k=3)
    stop = threading.Event()
    seen: list[str] = []

    def on_text(piece: str) -> None:
        seen.append(piece)
        stop.set()  # the reader goes away after the first words

    with pytest.raises(GenerationCancelled):
        asker.ask(QUESTIONS[0], on_text=on_text, cancel=stop)
    assert len(seen) == 1 and asker.history == []
    assert "".join(small.generate(MESSAGES))  # the model is free again
