"""How many searches may use the CPU at once, so that answers are not starved.

A search is pure CPU (a query embedding, then FAISS and BM25). FastAPI runs each in its 40-thread
pool; with 50 clients that is 40 searches, each with its own OpenMP team, fighting over two
cores with llama.cpp's threads. Measured on 2 cores with `bench/serve.py` before this gate:
27.7 searches/s, and in 60 s only 10 answers finished while 203 were refused with a full queue.
More searches at once than cores buys no throughput, only latency, memory and a starved model.

So searches run on a pool of `workers` threads of their own (the cores), not on FastAPI's 40:
the CPU work, the per-thread SQLite connections and malloc arenas stay bounded by the cores
(measured: 900 searches from 40 threads grew the process by 116 MiB, from 2 threads by 72 MiB,
flat after ~1,000). Each run also takes a slot: while the model is generating, one fewer search
runs (never none), which leaves llama.cpp a core of its own.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")


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
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="ragline-search")

    async def run(self, fn: Callable[[], T]) -> T:
        """`fn()` on a search thread, holding a slot; the event loop stays free meanwhile."""
        def in_slot() -> T:
            with self.slot():
                return fn()

        return await asyncio.get_running_loop().run_in_executor(self._pool, in_slot)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

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
