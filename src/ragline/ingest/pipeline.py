"""The incremental ingest: hash, skip what is unchanged, load, chunk, embed, commit.

Work is flushed in batches of chunks and committed at checkpoints, so a long ingest that is
killed keeps what it had committed and a re-run picks up from there.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ragline.errors import LoadError
from ragline.ingest.discover import discover
from ragline.ingest.loaders import load
from ragline.ingest.progress import IngestProgress
from ragline.store.catalog import DocumentRow
from ragline.types import Chunk

if TYPE_CHECKING:
    from ragline.index import Index


@dataclass
class IngestReport:
    """What an ingest did; the CLI prints it as the closing summary."""

    added: int = 0
    unchanged: int = 0
    updated: int = 0
    removed: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    chunks_written: int = 0
    chunks_embedded: int = 0
    chunks_reused: int = 0
    seconds: float = 0.0


@dataclass
class _Pending:
    path: str
    hash: str
    size: int
    mtime: float
    chunks: list[Chunk]
    existing: DocumentRow | None


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def chunk_id(chunk: Chunk) -> str:
    raw = f"{chunk.source}\0{chunk.ordinal}\0{chunk.text}".encode()
    return hashlib.sha1(raw).hexdigest()[:16]


class Ingestor:
    """Runs one ingest against an open, locked index."""

    def __init__(self, index: Index, progress: IngestProgress | None = None,
                 flush_chunks: int = 512, checkpoint_seconds: float = 20.0) -> None:
        self.index = index
        self.progress = progress or IngestProgress()
        self.flush_chunks = flush_chunks
        self.checkpoint_seconds = checkpoint_seconds
        self.report = IngestReport()
        self.pending: list[_Pending] = []
        self.dirty = False
        self.last_commit = time.monotonic()

    # main loop ----------------------------------------------------------------------------
    def run(self, paths: Sequence[str | Path], include: Sequence[str] = (),
            exclude: Sequence[str] = (), prune: bool = False) -> IngestReport:
        started = time.perf_counter()
        files, missing = discover(paths, include, exclude)
        self.report.failed.extend(missing)
        self.progress.start(len(files))
        fingerprint = self.index.settings_fingerprint()
        for path in files:
            self._visit(path, fingerprint)
            if sum(len(p.chunks) for p in self.pending) >= self.flush_chunks:
                self._flush()
            self._maybe_checkpoint()
        self._flush()
        if prune:
            self._prune(paths, {str(f) for f in files})
        if self.dirty:
            self.index._checkpoint()
        self.progress.finish()
        self.report.seconds = time.perf_counter() - started
        return self.report

    def _visit(self, path: Path, fingerprint: str) -> None:
        key = str(path)
        try:
            stat = path.stat()
            digest = f"{file_hash(path)}:{fingerprint}"
        except FileNotFoundError:
            return self._fail(key, "file vanished before it could be read")
        except OSError as e:
            return self._fail(key, f"cannot read: {e.strerror or e}")
        existing = self.index.catalog.document(key)
        if existing is not None and existing.hash == digest:
            self.report.unchanged += 1
            self.progress.file_done(key, "unchanged")
            return None
        try:
            docs = load(path)
        except LoadError as e:
            return self._fail(key, e.reason)
        except Exception as e:  # a loader bug must not stop the ingest
            return self._fail(key, f"unexpected {type(e).__name__}: {e}")
        for doc in docs:
            for w in doc.warnings:
                self.report.warnings.append(w)
                self.progress.warn(w)
        chunks = [c for doc in docs for c in self.index.chunker.chunk(doc)]
        pending = _Pending(key, digest, stat.st_size, stat.st_mtime, chunks, existing)
        if len(chunks) > self.flush_chunks:
            self._flush()
            self._write_large(pending)
        else:
            self.pending.append(pending)
        # report the file as soon as it is read, so the files bar moves file by file
        self.progress.file_done(key, "updated" if existing else "added", len(chunks))
        return None

    def _fail(self, path: str, reason: str) -> None:
        self.report.failed.append((path, reason))
        self.progress.file_done(path, "failed")

    # writing ------------------------------------------------------------------------------
    def _vectors_for(self, chunks: list[Chunk], hashes: list[str],
                     carry: dict[str, np.ndarray] | None = None) -> np.ndarray:
        """Reuse stored vectors for texts already embedded; embed only the rest."""
        index = self.index
        carry = dict(carry or {})
        known = index.catalog.ids_by_text_hash(h for h in hashes if h not in carry)
        if known:
            vecs = index.vectors.get(np.array(list(known.values()), dtype=np.int64))
            carry.update(zip(known, vecs, strict=True))
        out = np.zeros((len(chunks), index.embedder.dim), dtype=np.float32)
        todo: dict[str, list[int]] = {}
        for i, h in enumerate(hashes):
            if h in carry:
                out[i] = carry[h]
            else:
                todo.setdefault(h, []).append(i)
        if todo:
            texts = [chunks[rows[0]].embed_text() for rows in todo.values()]
            self.progress.embedding(len(texts))
            vecs = index.embedder.embed(texts, progress=self.progress.embedded)
            for vec, rows in zip(vecs, todo.values(), strict=True):
                out[rows] = vec
        self.report.chunks_embedded += len(todo)
        self.report.chunks_reused += len(chunks) - len(todo)
        return out

    def _start_document(self, p: _Pending, digest: str, now: float) -> int:
        """Replace a document's row and drop its old chunks; returns the document id."""
        if p.existing is not None:
            stale = self.index.catalog.delete_chunks_of(p.existing.id)
            self.index.vectors.remove(np.array(stale, dtype=np.int64))
            self.report.updated += 1
        else:
            self.report.added += 1
        return self.index.catalog.upsert_document(p.path, digest, p.size, p.mtime, now)

    def _write_chunks(self, doc_id: int, chunks: list[Chunk], hashes: list[str],
                      vectors: np.ndarray) -> None:
        index = self.index
        ids = [index.allocate_id() for _ in chunks]
        rows = [(vid, chunk_id(c), doc_id, c.source, c.ordinal, c.text, h, c.page, c.heading,
                 c.title, c.start, c.end)
                for vid, c, h in zip(ids, chunks, hashes, strict=True)]
        index.catalog.insert_chunks(rows)
        index.vectors.add(np.array(ids, dtype=np.int64), vectors)
        self.report.chunks_written += len(rows)
        self.dirty = True

    def _flush(self) -> None:
        """Embed and write the pending small documents in one batch."""
        if not self.pending:
            return
        chunks = [c for p in self.pending for c in p.chunks]
        hashes = [self.index.text_hash(c) for c in chunks]
        vectors = self._vectors_for(chunks, hashes)  # before old chunks are dropped
        now = time.time()
        pos = 0
        for p in self.pending:
            doc_id = self._start_document(p, p.hash, now)
            end = pos + len(p.chunks)
            self._write_chunks(doc_id, p.chunks, hashes[pos:end], vectors[pos:end])
            pos = end
        self.pending.clear()

    def _write_large(self, p: _Pending) -> None:
        """Write a big file (a JSONL corpus, a book) in slices with checkpoints between them.

        Until the last slice the document row carries a `partial:` hash, so a killed run
        re-reads the file next time, and the vectors committed so far are reused by text hash.
        """
        hashes = [self.index.text_hash(c) for c in p.chunks]
        known = self.index.catalog.ids_by_text_hash(hashes)
        carry: dict[str, np.ndarray] = {}
        if known:  # keep the old version's vectors before its chunks are dropped
            vecs = self.index.vectors.get(np.array(list(known.values()), dtype=np.int64))
            carry = dict(zip(known, vecs, strict=True))
        now = time.time()
        doc_id = self._start_document(p, f"partial:{p.hash}", now)
        step = self.flush_chunks
        for i in range(0, len(p.chunks), step):
            part, part_hashes = p.chunks[i : i + step], hashes[i : i + step]
            self._write_chunks(doc_id, part, part_hashes,
                               self._vectors_for(part, part_hashes, carry))
            self._maybe_checkpoint()
        self.index.catalog.upsert_document(p.path, p.hash, p.size, p.mtime, now)

    def _maybe_checkpoint(self) -> None:
        if self.dirty and time.monotonic() - self.last_commit > self.checkpoint_seconds:
            self.index._checkpoint()
            self.last_commit = time.monotonic()

    def _prune(self, roots: Sequence[str | Path], seen: set[str]) -> None:
        resolved = [Path(r).expanduser().resolve() for r in roots]
        prefixes = [str(r) + "/" for r in resolved if not r.is_file()]
        exact = {str(r) for r in resolved}
        for doc in self.index.catalog.documents():
            under = doc.path in exact or any(doc.path.startswith(p) for p in prefixes)
            # only what is gone from disk: a file left out by --include/--exclude stays
            if under and doc.path not in seen and not Path(doc.path).exists():
                self.index.vectors.remove(np.array(self.index.catalog.delete_document(doc.id)))
                self.report.removed += 1
                self.dirty = True
