"""What the routes share: the index and the model (loaded once), and the services around them.

Nothing here holds per-request state: a search takes its own store snapshot, an answer gets
its own `Asker` (and history), and the model is handed out by the generation queue.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragline.generate.answer import Asker
from ragline.generate.base import LLMBackend
from ragline.generate.factory import DEFAULT_MIN_CONFIDENCE, DEFAULT_MIN_SCORE
from ragline.generate.quote import PER_PASSAGE
from ragline.index import Index
from ragline.serve.auth import Auth
from ragline.serve.cpu import SearchGate
from ragline.serve.jobs import Job, Jobs
from ragline.serve.keys import KeyStore
from ragline.serve.metrics import Metrics
from ragline.serve.queue import GenerationQueue

STATIC_DIR = Path(__file__).resolve().parent / "static"


@dataclass
class ServeSettings:
    folder: Path  # the index folder: keys.sqlite and uploads/ live here, whatever the store
    public_read: bool = False
    max_queue: int = 8
    search_workers: int | None = None  # searches at once; None: the cores (see cpu.py)
    max_upload_mb: int = 50
    k: int = 5  # passages retrieved for an answer unless the request says
    min_score: float = DEFAULT_MIN_SCORE
    min_confidence: float = DEFAULT_MIN_CONFIDENCE  # extractive answers below it abstain
    sentences: int = PER_PASSAGE  # sentences of each passage in the prompt (0: whole ones)
    static_dir: Path = STATIC_DIR

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024


class Services:
    def __init__(self, index: Index, backend: LLMBackend, settings: ServeSettings) -> None:
        self.index = index
        self.backend = backend
        self.settings = settings
        self.metrics = Metrics()
        self.keys = KeyStore(settings.folder)
        self.auth = Auth(self.keys, settings.public_read)
        self.read = self.auth.dependency("read")
        self.write = self.auth.dependency("write")
        self.searches = SearchGate(settings.search_workers)
        self.queue = GenerationQueue(settings.max_queue, self.metrics, self.searches)
        self.write_lock = threading.Lock()  # the store has one writer: jobs and deletes
        self.jobs = Jobs(index, self.write_lock, on_finish=self._job_finished)
        self.uploads = Path(settings.folder) / "uploads"

    def asker(self, k: int | None = None, where: str | Mapping[str, Any] | None = None,
              short: bool = False) -> Asker:
        """A fresh asker for one request, sharing the index and the model."""
        return Asker(self.index, self.backend, k=k or self.settings.k,
                     min_score=self.settings.min_score, stream=True, concise=short,
                     where=where, min_confidence=self.settings.min_confidence,
                     per_passage=self.settings.sentences)

    def counts(self) -> tuple[int, int]:
        with self.index.store.read() as reader:
            documents, chunks = reader.counts()
        self.metrics.set_counts(documents, chunks)
        return documents, chunks

    def _job_finished(self, job: Job) -> None:
        self.metrics.jobs.labels(job.status).inc()
        self.counts()

    def close(self) -> None:
        self.jobs.close()
        self.searches.close()
