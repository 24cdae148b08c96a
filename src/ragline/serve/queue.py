"""The generation queue: one model, taken in turn by the requests that need it.

An asyncio semaphore of 1 hands the model to one generation at a time. `reserve()` is called
by the request handler before any byte of the response is sent; it counts the requests that
hold or await the model and refuses one that would make more than `max_waiting` wait
(QueueFull: 503 with Retry-After), so a refusal is a real status code, never an event in the
middle of a stream.

Each generation runs in a thread of its own; the request's coroutine relays its pieces. When
the client goes away the coroutine is cancelled and sets the run's `cancel` event: the asker
stops at the model's next piece and closes the backend's stream, which stops llama.cpp (or
drops the HTTP stream). The thread hands the semaphore back only when it has ended, so the
next generation never overlaps the previous one on the model. While it runs, the search gate
(`cpu.py`) lets one search fewer use the CPU.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, Generic, TypeVar

from ragline.generate.base import GenerationCancelled
from ragline.serve.cpu import SearchGate
from ragline.serve.metrics import Metrics

T = TypeVar("T")
#: work(on_text, cancel) -> result; runs in a thread of its own
Work = Callable[[Callable[[str], None], threading.Event], T]


class QueueFull(Exception):
    def __init__(self, waiting: int, retry_after: int) -> None:
        super().__init__(f"the model is busy and {waiting} requests are already waiting; "
                         f"try again in {retry_after} s")
        self.retry_after = retry_after


class GenerationQueue:
    """All its methods run on the event loop's thread (so plain counters are safe)."""

    def __init__(self, max_waiting: int, metrics: Metrics,
                 searches: SearchGate | None = None) -> None:
        self.max_waiting = max_waiting
        self.metrics = metrics
        self.searches = searches or SearchGate()
        self._turn = asyncio.Semaphore(1)
        self.reserved = 0  # requests holding or awaiting the model
        self.running = 0
        self._seconds = 5.0  # moving average of one generation's length, for Retry-After

    @property
    def waiting(self) -> int:
        return self.reserved - self.running

    def reserve(self) -> Ticket:
        """A place in the queue, or QueueFull when more than `max_waiting` would wait."""
        # one of the holders has the model (or is about to take it); the others and this
        # request would wait
        if self.reserved > self.max_waiting:
            self.metrics.rejected.inc()
            raise QueueFull(self.waiting, self.retry_after())
        self.reserved += 1
        self._gauges()
        return Ticket(self)

    def retry_after(self) -> int:
        return max(1, min(600, math.ceil(self._seconds * max(1, self.reserved))))

    def run(self, ticket: Ticket, work: Work[T]) -> GenerationRun[T]:
        return GenerationRun(ticket, work)

    def _finished(self, seconds: float) -> None:
        self._seconds = 0.8 * self._seconds + 0.2 * seconds

    def _gauges(self) -> None:
        self.metrics.waiting.set(self.waiting)
        self.metrics.running.set(self.running)


class Ticket:
    """One request's place: waiting, then holding the model, then done (released once)."""

    def __init__(self, queue: GenerationQueue) -> None:
        self.queue = queue
        self.state = "waiting"

    async def acquire(self) -> None:
        try:
            await self.queue._turn.acquire()
        except BaseException:  # cancelled while waiting: the client left the queue
            self.release()
            raise
        self.state = "running"
        self.queue.running += 1
        self.queue._gauges()

    def release(self) -> None:
        if self.state == "done":
            return
        if self.state == "running":
            self.queue.running -= 1
            self.queue._turn.release()
        self.state = "done"
        self.queue.reserved -= 1
        self.queue._gauges()


class GenerationRun(Generic[T]):
    """One generation: `events()` yields ("token", text)..., then ("done", result) or
    ("error", exception); ("cancelled", None) when it was stopped."""

    def __init__(self, ticket: Ticket, work: Work[T]) -> None:
        self.ticket = ticket
        self.work = work
        self.cancel = threading.Event()
        self._started = False
        self._thread: threading.Thread | None = None

    async def events(self) -> AsyncIterator[tuple[str, Any]]:
        self._started = True
        metrics = self.ticket.queue.metrics
        finished = False
        try:
            await self.ticket.acquire()
            if self.cancel.is_set():
                return
            loop = asyncio.get_running_loop()
            inbox: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
            self._thread = threading.Thread(target=self._work, args=(loop, inbox),
                                            name="ragline-answer", daemon=True)
            self._thread.start()
            while True:
                kind, value = await inbox.get()
                finished = kind in ("done", "error", "cancelled")
                yield kind, value
                if finished:
                    return
        finally:
            if not finished:  # the consumer went away: stop the model at its next piece
                self.cancel.set()
                metrics.abandoned.inc()
            if self._thread is None:  # no thread took the model: give the place back here
                self.ticket.release()

    def close(self) -> None:
        """For a run whose events were never read (the response failed before it began)."""
        if not self._started:
            self.ticket.release()

    def _work(self, loop: asyncio.AbstractEventLoop,
              inbox: asyncio.Queue[tuple[str, Any]]) -> None:
        started = time.perf_counter()
        metrics = self.ticket.queue.metrics

        def put(item: tuple[str, Any]) -> None:
            # a closed loop: the server is shutting down, nobody is listening
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(inbox.put_nowait, item)

        def on_text(piece: str) -> None:
            if not self.cancel.is_set():
                put(("token", piece))

        outcome = "error"
        try:
            with self.ticket.queue.searches.generating():
                result = self.work(on_text, self.cancel)
            outcome = "done"
            put(("done", result))
        except GenerationCancelled:
            outcome = "cancelled"
            put(("cancelled", None))
        except Exception as e:  # reported to the client as an error event
            put(("error", e))
        finally:
            metrics.generations.labels(outcome).inc()
            seconds = time.perf_counter() - started

            def done() -> None:
                self.ticket.queue._finished(seconds)
                self.ticket.release()

            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(done)
