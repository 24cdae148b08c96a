"""The search gate: no more searches at once than slots, one fewer while the model generates,
never none."""

from __future__ import annotations

import asyncio
import threading

from ragline.serve.cpu import SearchGate


def _search_in_thread(gate: SearchGate, log: list[str], done: threading.Event) -> threading.Thread:
    def run() -> None:
        with gate.slot():
            log.append("acquired")
        done.set()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_limit_narrows_while_generating_but_never_to_zero() -> None:
    two, one = SearchGate(2), SearchGate(1)
    assert (two.limit, one.limit) == (2, 1)
    with two.generating(), one.generating():
        assert (two.limit, one.limit) == (1, 1)
    assert (two.limit, one.limit) == (2, 1)


def test_a_search_waits_for_a_free_slot() -> None:
    gate, log, done = SearchGate(2), [], threading.Event()
    with gate.slot():
        with gate.slot():
            assert gate.active == 2
            t = _search_in_thread(gate, log, done)
            log.append("released")
        assert done.wait(30)
    t.join(30)
    assert log == ["released", "acquired"]
    assert gate.active == 0


def test_a_generation_takes_a_slot_from_new_searches_until_it_ends() -> None:
    gate, log, done = SearchGate(2), [], threading.Event()
    with gate.slot():
        with gate.generating():
            t = _search_in_thread(gate, log, done)  # 1 running, limit 1: waits
            log.append("generation ended")
        assert done.wait(30)
    t.join(30)
    assert log == ["generation ended", "acquired"]


def test_slots_are_given_back_when_a_search_fails() -> None:
    gate = SearchGate(1)
    try:
        with gate.slot():
            raise ValueError("bad query")
    except ValueError:
        pass
    assert gate.active == 0
    with gate.slot():
        assert gate.active == 1


def test_runs_on_its_own_bounded_threads() -> None:
    """Searches never spread over FastAPI's 40 threads: at most `workers` threads do them."""
    gate = SearchGate(2)
    barrier = threading.Barrier(2, timeout=30)

    def work(i: int) -> str:
        if i < 2:
            barrier.wait()  # the first two run at the same time: both threads in use
        return threading.current_thread().name

    async def main() -> list[str]:
        return list(await asyncio.gather(*(gate.run(lambda i=i: work(i)) for i in range(12))))

    try:
        names = asyncio.run(main())
    finally:
        gate.close()
    assert len(set(names)) == 2
    assert all(n.startswith("ragline-search") for n in names)
