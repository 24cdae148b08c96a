"""The incremental ingest: hash, skip what is unchanged, load, chunk, embed, commit.

It writes through one `StoreWriter` (any backend): work is flushed in batches of chunks and
committed at checkpoints, so a long ingest that is killed keeps what it had committed and a
re-run picks up from there.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ragline.embed import Embedder
from ragline.errors import LoadError, RaglineError
from ragline.ingest.chunker import Chunker
from ragline.ingest.discover import discover
from ragline.ingest.loaders import load
from ragline.ingest.metadata import builtin_meta, document_meta
from ragline.ingest.progress import IngestProgress
from ragline.store.base import ChunkRecord, DocumentRecord, Meta, StoreWriter
from ragline.types import Chunk, Document

#: bump when what a document's record holds changes, so existing files are read again
#: (their vectors are reused by text hash); 2: metadata
RECORD_VERSION = "2"


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
    doc: DocumentRecord
    chunks: list[ChunkRecord]
    replaces: bool


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def chunk_id(chunk: Chunk) -> str:
    raw = f"{chunk.source}\0{chunk.ordinal}\0{chunk.text}".encode()
    return hashlib.sha1(raw).hexdigest()[:16]


def text_hash(model: str, chunk: Chunk) -> str:
    """Key of the exact text the encoder sees, so unchanged text is never embedded twice."""
    raw = f"{model}\0{chunk.embed_text()}".encode()
    return hashlib.sha256(raw).hexdigest()[:32]


def record_key(content_hash: str, fingerprint: str, meta: Meta) -> str:
    """What decides that a file is unchanged: its bytes, the settings, the user's --meta."""
    extra = json.dumps(dict(meta), sort_keys=True) if meta else ""
    tail = hashlib.sha256(extra.encode()).hexdigest()[:12] if extra else ""
    return f"{content_hash}:{fingerprint}:r{RECORD_VERSION}{tail}"


class Ingestor:
    """Runs one ingest through an open store writer."""

    def __init__(self, writer: StoreWriter, embedder: Embedder, chunker: Chunker,
                 fingerprint: str, progress: IngestProgress | None = None,
                 meta: Meta | None = None, flush_chunks: int = 512,
                 checkpoint_seconds: float = 20.0) -> None:
        self.writer = writer
        self.embedder = embedder
        self.chunker = chunker
        self.fingerprint = fingerprint
        self.progress = progress or IngestProgress()
        self.meta = dict(meta or {})  # the user's --meta, on every document of this ingest
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
        for path in files:
            self._visit(path)
            if sum(len(p.chunks) for p in self.pending) >= self.flush_chunks:
                self._flush()
            self._maybe_checkpoint()
        self._flush()
        if prune:
            self._prune(paths, {str(f) for f in files})
        self.writer.commit()
        self.progress.finish()
        self.report.seconds = time.perf_counter() - started
        return self.report

    def _visit(self, path: Path) -> None:
        key = str(path)
        try:
            stat = path.stat()
            digest = record_key(file_hash(path), self.fingerprint, self.meta)
        except FileNotFoundError:
            return self._fail(key, "file vanished before it could be read")
        except OSError as e:
            return self._fail(key, f"cannot read: {e.strerror or e}")
        existing = self.writer.document(key)
        if existing is not None and existing.hash == digest:
            self.report.unchanged += 1
            self.progress.file_done(key, "unchanged")
            return None
        try:
            docs = load(path)
            pending = self._records(path, docs, digest, stat.st_size, stat.st_mtime)
        except LoadError as e:
            return self._fail(key, e.reason)
        except RaglineError as e:  # metadata of a type the index does not hold
            return self._fail(key, str(e).removeprefix(f"{key}: "))
        except Exception as e:  # a loader bug must not stop the ingest
            return self._fail(key, f"unexpected {type(e).__name__}: {e}")
        pending.replaces = existing is not None
        for doc in docs:
            for w in doc.warnings:
                self.report.warnings.append(w)
                self.progress.warn(w)
        if len(pending.chunks) > self.flush_chunks:
            self._flush()
            self._write_large(pending)
        else:
            self.pending.append(pending)
        # report the file as soon as it is read, so the files bar moves file by file
        self.progress.file_done(key, "updated" if existing else "added", len(pending.chunks))
        return None

    def _records(self, path: Path, docs: list[Document], digest: str, size: int,
                 mtime: float) -> _Pending:
        """The document row and chunk rows of one file, metadata checked before any write."""
        chunks: list[ChunkRecord] = []
        metas: list[dict[str, object]] = []
        for doc in docs:
            meta = document_meta(builtin_meta(path, doc, size, mtime), doc.meta, self.meta)
            self.writer.register_fields(meta, doc.source)
            metas.append(meta)
            for c in self.chunker.chunk(doc):
                chunks.append(ChunkRecord(
                    chunk_id=chunk_id(c), source=c.source, ordinal=c.ordinal, text=c.text,
                    text_hash=text_hash(self.embedder.name, c), start=c.start, end=c.end,
                    page=c.page, heading=c.heading, title=c.title, meta=meta))
        if len(docs) == 1:
            file_meta = metas[0]
        else:  # a corpus file: its own facts, not one record's
            whole = Document(str(path), [])
            file_meta = document_meta(builtin_meta(path, whole, size, mtime), {}, self.meta)
        doc_row = DocumentRecord(str(path), digest, size, mtime, file_meta)  # type: ignore[arg-type]
        return _Pending(doc_row, chunks, replaces=False)

    def _fail(self, path: str, reason: str) -> None:
        self.report.failed.append((path, reason))
        self.progress.file_done(path, "failed")

    # writing ------------------------------------------------------------------------------
    def _vectors_for(self, chunks: list[ChunkRecord],
                     carry: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        """Reuse stored vectors for texts already embedded; embed only the rest."""
        carry = dict(carry or {})
        carry.update(self.writer.vectors_for_hashes(
            c.text_hash for c in chunks if c.text_hash not in carry))
        out = np.zeros((len(chunks), self.embedder.dim), dtype=np.float32)
        todo: dict[str, list[int]] = {}
        for i, c in enumerate(chunks):
            if c.text_hash in carry:
                out[i] = carry[c.text_hash]
            else:
                todo.setdefault(c.text_hash, []).append(i)
        if todo:
            texts = [chunks[rows[0]].embed_text() for rows in todo.values()]
            self.progress.embedding(len(texts))
            vecs = self.embedder.embed(texts, progress=self.progress.embedded)
            for vec, rows in zip(vecs, todo.values(), strict=True):
                out[rows] = vec
        self.report.chunks_embedded += len(todo)
        self.report.chunks_reused += len(chunks) - len(todo)
        return out

    def _start_document(self, p: _Pending, hash_: str) -> int:
        """Write (or replace) the document row, which drops its old chunks."""
        if p.replaces:
            self.report.updated += 1
        else:
            self.report.added += 1
        self.dirty = True
        return self.writer.put_document(replace(p.doc, hash=hash_))

    def _write_chunks(self, doc_id: int, chunks: list[ChunkRecord],
                      vectors: np.ndarray) -> None:
        self.writer.add_chunks(doc_id, chunks, vectors)
        self.report.chunks_written += len(chunks)
        self.dirty = True

    def _flush(self) -> None:
        """Embed and write the pending small documents in one batch."""
        if not self.pending:
            return
        chunks = [c for p in self.pending for c in p.chunks]
        vectors = self._vectors_for(chunks)  # before old chunks are dropped
        pos = 0
        for p in self.pending:
            doc_id = self._start_document(p, p.doc.hash)
            end = pos + len(p.chunks)
            self._write_chunks(doc_id, p.chunks, vectors[pos:end])
            pos = end
        self.pending.clear()

    def _write_large(self, p: _Pending) -> None:
        """Write a big file (a JSONL corpus, a book) in slices with checkpoints between them.

        Until the last slice the document row carries a `partial:` hash, so a killed run
        re-reads the file next time, and the vectors committed so far are reused by text hash.
        """
        # keep the old version's vectors before its chunks are dropped
        carry = self.writer.vectors_for_hashes(c.text_hash for c in p.chunks)
        doc_id = self._start_document(p, f"partial:{p.doc.hash}")
        step = self.flush_chunks
        for i in range(0, len(p.chunks), step):
            part = p.chunks[i : i + step]
            self._write_chunks(doc_id, part, self._vectors_for(part, carry))
            self._maybe_checkpoint()
        self.writer.set_document_hash(doc_id, p.doc.hash)

    def _maybe_checkpoint(self) -> None:
        if self.dirty and time.monotonic() - self.last_commit > self.checkpoint_seconds:
            self.writer.commit()
            self.dirty = False
            self.last_commit = time.monotonic()

    def _prune(self, roots: Sequence[str | Path], seen: set[str]) -> None:
        resolved = [Path(r).expanduser().resolve() for r in roots]
        prefixes = [str(r) + "/" for r in resolved if not r.is_file()]
        exact = {str(r) for r in resolved}
        for doc in self.writer.documents():
            under = doc.path in exact or any(doc.path.startswith(p) for p in prefixes)
            # only what is gone from disk: a file left out by --include/--exclude stays
            if under and doc.path not in seen and not Path(doc.path).exists():
                self.writer.delete_document(doc.id)
                self.report.removed += 1
                self.dirty = True
