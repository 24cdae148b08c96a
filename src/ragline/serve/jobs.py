"""Upload jobs: the files of one upload, ingested in the background, one job at a time.

A single worker thread runs the jobs in order, each as one `Index.add` under the app's write
lock (the store allows one writer). Searches never wait for it: they read the last committed
state. A job's progress comes from an `IngestProgress` subclass that the ingest calls as it
goes; `GET /v1/jobs/{id}` reads a copy under the registry's lock. Jobs live in memory: a
restarted server forgets them (the documents they indexed stay).
"""

from __future__ import annotations

import queue
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragline.index import Index
from ragline.ingest.pipeline import IngestReport
from ragline.ingest.progress import IngestProgress
from ragline.store.base import Meta

KEEP_FINISHED = 500  # finished jobs remembered for GET /v1/jobs/{id}


@dataclass
class Job:
    id: str
    folder: Path
    names: list[str]
    meta: dict[str, Any] = field(default_factory=dict)
    status: str = "queued"  # queued | running | done | failed
    done: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    chunks_embedded: int = 0
    error: str | None = None
    finished: threading.Event = field(default_factory=threading.Event)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "files": len(self.names),
                "done": self.done, "added": self.added, "updated": self.updated,
                "unchanged": self.unchanged, "failed": [list(f) for f in self.failed],
                "chunks_embedded": self.chunks_embedded, "error": self.error}


class JobProgress(IngestProgress):
    """Counts what the ingest reports, into the job, under the registry's lock."""

    def __init__(self, job: Job, lock: threading.Lock) -> None:
        self.job = job
        self.lock = lock

    def file_done(self, path: str, status: str, chunks: int = 0) -> None:
        with self.lock:
            self.job.done += 1
            if status in ("added", "updated", "unchanged"):
                setattr(self.job, status, getattr(self.job, status) + 1)
            elif status == "failed":
                self.job.failed.append((Path(path).name, "failed"))

    def embedded(self, n: int) -> None:
        with self.lock:
            self.job.chunks_embedded += n


class Jobs:
    def __init__(self, index: Index, write_lock: threading.Lock,
                 on_finish: Callable[[Job], None] | None = None) -> None:
        self.index = index
        self.write_lock = write_lock
        self.on_finish = on_finish
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._worker: threading.Thread | None = None

    @staticmethod
    def new_id() -> str:
        return secrets.token_hex(8)

    def submit(self, job_id: str, folder: Path, names: list[str], meta: Meta) -> Job:
        job = Job(job_id, folder, list(names), dict(meta))
        with self._lock:
            self._jobs[job.id] = job
            self._forget_old()
            if self._worker is None:
                self._worker = threading.Thread(target=self._loop, name="ragline-ingest",
                                                daemon=True)
                self._worker.start()
        self._queue.put(job)
        return job

    def get(self, job_id: str, wait: float = 0.0) -> dict[str, Any] | None:
        """The job's state; with `wait`, first wait up to that many seconds for its end."""
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            return None
        if wait > 0:
            job.finished.wait(wait)
        with self._lock:
            return job.to_dict()

    def close(self, timeout: float = 30.0) -> None:
        """Let the running job finish (queued ones are dropped), then stop the worker."""
        with self._lock:
            worker = self._worker
        if worker is None:
            return
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._queue.put(None)
        worker.join(timeout)

    def _forget_old(self) -> None:
        finished = [j for j in self._jobs.values() if j.finished.is_set()]
        for job in finished[:max(0, len(finished) - KEEP_FINISHED)]:
            del self._jobs[job.id]

    def _loop(self) -> None:
        while (job := self._queue.get()) is not None:
            self._run(job)

    def _run(self, job: Job) -> None:
        with self._lock:
            job.status = "running"
        try:
            with self.write_lock:
                report = self.index.add([job.folder / n for n in job.names], meta=job.meta,
                                        progress=JobProgress(job, self._lock))
        except Exception as e:  # the whole job failed: locked index, bad metadata type...
            with self._lock:
                job.status, job.error = "failed", str(e) or type(e).__name__
        else:
            self._record(job, report)
        finally:
            try:
                if self.on_finish is not None:
                    self.on_finish(job)
            finally:
                job.finished.set()

    def _record(self, job: Job, report: IngestReport) -> None:
        failed = [(_name(path, job.folder), reason) for path, reason in report.failed]
        for name, _ in failed:  # nothing in the index points at it: do not keep it
            (job.folder / name).unlink(missing_ok=True)
        with self._lock:
            job.added, job.updated, job.unchanged = report.added, report.updated, report.unchanged
            job.failed = failed
            job.chunks_embedded = report.chunks_embedded
            job.done = len(job.names)
            job.status = "done"


def _name(path: str, folder: Path) -> str:
    try:
        return Path(path).resolve().relative_to(folder.resolve()).as_posix()
    except ValueError:
        return Path(path).name
