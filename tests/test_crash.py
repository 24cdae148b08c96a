"""Crash safety: kill -9 an ingest at several points; the index must stay consistent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from helpers_core import all_ids, assert_consistent, counts, write_corpus

from ragline.errors import IndexLockedError
from ragline.index import Index
from ragline.store.local.vectors import FaissVectors

N_FILES = 40

# flush every 4 chunks and commit at every flush, so kills land between and inside commits
SCRIPT = """
import sys
from ragline import Index
from ragline.ingest.progress import IngestProgress

class Lines(IngestProgress):
    def file_done(self, path, status, chunks=0):
        print("FILE", status, path, flush=True)
    def embedded(self, n):
        print("EMBEDDED", n, flush=True)

with Index(sys.argv[1]) as idx:
    report = idx.add([sys.argv[2]], progress=Lines(), flush_chunks=4, checkpoint_seconds=0)
print("DONE", report.added, report.unchanged, flush=True)
"""


def _run_and_kill(index: Path, docs: Path, marker: str, count: int,
                  extra_delay: float = 0.0, before_kill: Callable[[], None] | None = None
                  ) -> bool:
    """Start an ingest; SIGKILL it when `marker` has been printed `count` times.

    Returns False if the ingest finished before the kill point was reached.
    """
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(index), str(docs)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=env)
    seen = 0
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith(marker):
                seen += 1
                if seen >= count:
                    if before_kill is not None:
                        before_kill()
                    if extra_delay:
                        time.sleep(extra_delay)
                    proc.send_signal(signal.SIGKILL)
                    break
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode == -signal.SIGKILL


def _check_reopens(index: Path, embedder) -> int:
    with Index(index, embedder=embedder) as idx:
        assert_consistent(idx)
        docs, chunks = counts(idx)
        with idx.store.read() as reader:
            empty = [d.path for d in reader.documents() if not reader.document_chunks(d.id)]
        assert not empty, "a document was committed without its chunks"
        hits = idx.search("apples in chapter 3", k=3).hits
        assert len(hits) == min(3, chunks)
        return docs


@pytest.mark.slow
def test_kill_9_at_several_points(tmp_path: Path, embedder) -> None:
    docs = tmp_path / "docs"
    write_corpus(docs, N_FILES)
    index = tmp_path / "idx"
    committed = []
    with Index(index, embedder=embedder) as idx:
        def second_writer() -> None:  # while the subprocess is writing
            with pytest.raises(IndexLockedError):
                idx.add([docs])
            with pytest.raises(IndexLockedError):
                idx.remove([docs])
            # reading is still allowed, and sees what was committed: by the 6th file at
            # least one flush of 4 chunks has been checkpointed
            hits = idx.search("apples", k=1).hits
            assert len(hits) == 1 and hits[0].source.startswith(str(docs))
            assert_consistent(idx)

        assert _run_and_kill(index, docs, "FILE added", 6, before_kill=second_writer)
    committed.append(_check_reopens(index, embedder))
    # (marker, count, delay): during start-up, after a few files, mid-embedding, later on
    for marker, count, delay in [("FILE added", 5, 0.0), ("EMBEDDED", 4, 0.05),
                                 ("FILE added", 9, 0.01)]:
        killed = _run_and_kill(index, docs, marker, count, delay)
        assert killed, f"the ingest finished before the kill point {marker} x{count}"
        committed.append(_check_reopens(index, embedder))
    assert committed[-1] > 0, "no checkpoint was ever committed"
    assert committed == sorted(committed)  # kills never lose committed work
    print("documents committed after each kill:", committed)
    with Index(index, embedder=embedder) as idx:
        report = idx.add([docs])
        assert not report.failed
        assert report.added + report.unchanged == N_FILES
        assert report.unchanged == committed[-1]
        assert counts(idx)[0] == N_FILES
        assert_consistent(idx)
        assert not list(index.glob("*.tmp"))
        assert len(list(index.glob("vectors.*.faiss"))) == 1
        sentence = "Note 17 sentence 2 says that comets number 529 behave in their own way"
        hit = idx.search(sentence, k=1).hits[0]
        assert hit.source == str(docs / "doc017.txt")


def test_leftovers_of_a_crashed_checkpoint_are_ignored(tmp_path: Path, embedder) -> None:
    """A crash after the vector file was written but before the catalog commit."""
    docs = tmp_path / "docs"
    files = write_corpus(docs, 3)
    index = tmp_path / "idx"
    with Index(index, embedder=embedder) as idx:
        idx.add([docs])
        generation = idx.status()["generation"]
        before = all_ids(idx).tolist()
    # the next generation's file from a run that died before committing: other content
    orphan = FaissVectors(index, embedder.dim, 0)
    orphan.add(np.array([999_999], dtype=np.int64), np.eye(1, embedder.dim, dtype=np.float32))
    orphan.commit(generation + 1)
    (index / f"vectors.{generation + 2}.faiss.tmp").write_bytes(b"half a file")
    with Index(index, embedder=embedder) as idx:
        assert idx.status()["generation"] == generation
        assert all_ids(idx).tolist() == before
        assert_consistent(idx)
        assert idx.search("apples", k=1).hits
        files[0].write_text("Entirely new text about lanterns and moths at dusk.\n")
        report = idx.add([docs])
        assert report.updated == 1
        assert idx.status()["generation"] == generation + 1
        assert 999_999 not in all_ids(idx)
        assert_consistent(idx)
        assert sorted(p.name for p in index.glob("vectors.*")) == [
            f"vectors.{generation + 1}.faiss"]
        assert idx.search("lanterns and moths", k=1).hits[0].source == str(files[0])
