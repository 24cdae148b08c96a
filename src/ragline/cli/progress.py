"""Ingest progress for a terminal (rich bar) or a pipe/log (plain lines)."""

from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ragline.ingest.progress import IngestProgress


class RichProgress(IngestProgress):
    """Two bars: files read, and chunks embedded (with chunks/s and ETA)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.bar = Progress(
            TextColumn("[bold]{task.description:<9}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("eta"),
            TimeRemainingColumn(), console=console, transient=False,
        )
        self.files: TaskID | None = None
        self.chunks: TaskID | None = None
        self.t0 = time.perf_counter()
        self.done_chunks = 0

    def start(self, files: int) -> None:
        self.bar.start()
        self.files = self.bar.add_task("files", total=files, rate="")

    def file_done(self, path: str, status: str, chunks: int = 0) -> None:
        if self.files is not None:
            self.bar.advance(self.files)

    def embedding(self, total: int) -> None:
        if self.chunks is None:
            self.t0 = time.perf_counter()
            self.chunks = self.bar.add_task("chunks", total=total, rate="")
        else:
            task = self.bar.tasks[self.chunks]
            self.bar.update(self.chunks, total=(task.total or 0) + total)

    def embedded(self, n: int) -> None:
        if self.chunks is None:
            return
        self.done_chunks += n
        rate = self.done_chunks / max(time.perf_counter() - self.t0, 1e-6)
        self.bar.update(self.chunks, advance=n, rate=f"{rate:.1f} chunks/s")

    def warn(self, message: str) -> None:
        self.bar.console.print(f"[yellow]warning:[/] {message}")

    def finish(self) -> None:
        self.bar.stop()


class PlainProgress(IngestProgress):
    """One line per file (and per embedded batch, at most every few seconds)."""

    def __init__(self) -> None:
        self.total = 0
        self.seen = 0
        self.embedded_n = 0
        self.last = 0.0

    def start(self, files: int) -> None:
        self.total = files
        print(f"ingesting {files} files", flush=True)

    def file_done(self, path: str, status: str, chunks: int = 0) -> None:
        self.seen += 1
        extra = f" ({chunks} chunks)" if chunks else ""
        print(f"[{self.seen}/{self.total}] {status}: {path}{extra}", flush=True)

    def embedded(self, n: int) -> None:
        self.embedded_n += n
        if time.monotonic() - self.last > 5:
            self.last = time.monotonic()
            print(f"embedded {self.embedded_n} chunks", flush=True)

    def warn(self, message: str) -> None:
        print(f"warning: {message}", file=sys.stderr, flush=True)


def make_progress(console: Console, quiet: bool) -> IngestProgress:
    if quiet:
        return IngestProgress()
    return RichProgress(console) if console.is_terminal else PlainProgress()
