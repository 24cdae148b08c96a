"""How many searches may use the CPU at once, so that answers are not starved.

A search is pure CPU (a query embedding, then FAISS and BM25). FastAPI runs each in its 40-thread
pool; with 50 clients that is 40 searches, each with its own OpenMP team, fighting over two
cores with llama.cpp's threads. Measured on 2 cores with `bench/serve.py` before this gate:
27.7 searches/s, and in 60 s only 10 answers finished while 203 were refused with a full queue.
More searches at once than cores buys no throughput, only latency, memory and a starved model.

So searches take a slot: at most `workers` (the cores) run at once, and while the model is
generating, one fewer (never fewer than one), which leaves llama.cpp a core of its own.
Waiting searches queue on a condition variable, in no particular order.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 2


class SearchGate:
    """Slots for CPU-bound searches; `generating()` narrows them while the model runs."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = max(1, workers or available_cores())
        self._cond = threading.Condition()
        self._active = 0
        self._generations = 0

    @property
    def limit(self) -> int:
        """Searches allowed to run now."""
        if self._generations and self.workers > 1:
            return self.workers - 1
        return self.workers

    @property
    def active(self) -> int:
        return self._active

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one slot for the block (blocks the calling thread until one is free)."""
        with self._cond:
            self._cond.wait_for(lambda: self._active < self.limit)
            self._active += 1
        try:
            yield
        finally:
            with self._cond:
                self._active -= 1
                self._cond.notify_all()

    @contextmanager
    def generating(self) -> Iterator[None]:
        """Mark a generation as running for the block: one search slot fewer meanwhile.

        Searches already running finish; new ones wait until the count is under the limit."""
        with self._cond:
            self._generations += 1
        try:
            yield
        finally:
            with self._cond:
                self._generations -= 1
                self._cond.notify_all()
