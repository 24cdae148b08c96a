"""`Index`: the Python API over one index folder (catalog, vectors, embedder, chunker)."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ragline.embed import DEFAULT_MODEL, Embedder, create_embedder
from ragline.errors import IndexLockedError, IndexMismatchError, RaglineError
from ragline.ingest.chunker import Chunker, ChunkSettings
from ragline.ingest.pipeline import Ingestor, IngestReport
from ragline.ingest.progress import IngestProgress
from ragline.retrieve import hybrid
from ragline.retrieve.bm25 import Bm25Index
from ragline.store.catalog import SCHEMA_VERSION, Catalog
from ragline.store.faiss_store import FaissStore
from ragline.types import Chunk, Hit, SearchResult

DEFAULT_INDEX = ".ragline"


def default_index_path() -> Path:
    return Path(os.environ.get("RAGLINE_INDEX", DEFAULT_INDEX))


class Index:
    """An on-disk index. Opening is cheap: the model loads only when text must be embedded."""

    def __init__(self, path: str | Path | None = None, model: str | None = None,
                 chunk_tokens: int | None = None, overlap: int | None = None,
                 embedder: Embedder | None = None) -> None:
        self.path = Path(path) if path is not None else default_index_path()
        self.path.mkdir(parents=True, exist_ok=True)
        self.catalog = Catalog(self.path / "catalog.sqlite")
        self.catalog.create_schema()
        meta = self.catalog.meta()
        try:
            self._check_model(meta, model, embedder)
            self.embedder: Embedder = embedder or create_embedder(
                meta.get("model", model or DEFAULT_MODEL))
            self._check_dimension(meta)
        except BaseException:
            self.catalog.close()  # refused before anything was written; do not leak the file
            raise
        stored = ChunkSettings(int(meta.get("chunk_tokens", 256)), int(meta.get("overlap", 32)))
        self.settings = ChunkSettings(chunk_tokens or stored.chunk_tokens,
                                      overlap if overlap is not None else stored.overlap)
        self._chunker: Chunker | None = None
        self._vectors: FaissStore | None = None
        self._lexical: Bm25Index | None = None
        self._lexical_gen = -1
        #: query-time retrieval settings (fusion, BM25 k1/b); see retrieve/hybrid.py
        self.retrieval = hybrid.DEFAULT_SETTINGS

    # opening checks ----------------------------------------------------------------------
    @staticmethod
    def _check_model(meta: dict[str, str], model: str | None, embedder: Embedder | None) -> None:
        stored = meta.get("model")
        wanted = embedder.name if embedder is not None else model
        if stored is None or wanted is None:
            return
        aliases = {"all-MiniLM-L6-v2": "sentence-transformers/all-MiniLM-L6-v2"}
        if aliases.get(wanted, wanted) != stored:
            raise IndexMismatchError(
                f"index was built with embedding model {stored!r}; refusing to open it with "
                f"{wanted!r} (use another --index folder, or the same model)"
            )

    def _check_dimension(self, meta: dict[str, str]) -> None:
        if "dim" in meta and int(meta["dim"]) != self.embedder.dim:
            raise IndexMismatchError(
                f"index holds {meta['dim']}-dimensional vectors but model {self.embedder.name!r} "
                f"makes {self.embedder.dim}; refusing to write"
            )
        if "pooling" in meta and meta["pooling"] != self.embedder.pooling:
            raise IndexMismatchError(
                f"index was built with {meta['pooling']} pooling, model uses "
                f"{self.embedder.pooling}"
            )

    # lazily built parts -------------------------------------------------------------------
    @property
    def chunker(self) -> Chunker:
        if self._chunker is None:
            tokenizer = getattr(self.embedder, "tokenizer", None)
            if tokenizer is None:
                raise RaglineError(
                    f"model {self.embedder.name!r} exposes no tokenizer to chunk with")
            self._chunker = Chunker(tokenizer, self.settings)
        return self._chunker

    @property
    def vectors(self) -> FaissStore:
        # a long-lived reader picks up what another process committed since it loaded
        if (self._vectors is not None and not self.catalog.in_transaction
                and int(self.catalog.meta().get("generation", 0)) != self._vectors.generation):
            self._vectors = None
        if self._vectors is None:
            self._vectors = self._open_vectors()
        return self._vectors

    @property
    def lexical(self) -> Bm25Index:
        """The BM25 index of the committed generation (reloaded when another process commits)."""
        generation = int(self.catalog.meta().get("generation", 0))
        stale = not self.catalog.in_transaction and generation != self._lexical_gen
        if self._lexical is None or stale:
            self._lexical = hybrid.open_lexical(self.path, self.catalog.conn, self.retrieval.bm25)
            self._lexical_gen = generation
        return self._lexical

    def _open_vectors(self) -> FaissStore:
        for _ in range(3):  # a writer may swap generations between our two reads
            generation = int(self.catalog.meta().get("generation", 0))
            try:
                return FaissStore(self.path, self.embedder.dim, generation)
            except FileNotFoundError:
                time.sleep(0.05)
        raise RaglineError(f"{self.path}: vector file for generation {generation} is missing")

    def settings_fingerprint(self) -> str:
        return f"{self.embedder.name}|{self.settings.chunk_tokens}|{self.settings.overlap}"

    def text_hash(self, chunk: Chunk) -> str:
        raw = f"{self.embedder.name}\0{chunk.embed_text()}".encode()
        return hashlib.sha256(raw).hexdigest()[:32]

    def allocate_id(self) -> int:
        self._next_id += 1
        return self._next_id

    # writing ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """Hold the folder's write lock and one catalog transaction; roll back on error."""
        fd = os.open(self.path / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise IndexLockedError(f"{self.path} is being written by another process") from None
        try:
            self._vectors = self._open_vectors()  # the newest committed state
            self.catalog.begin()
            meta = self.catalog.meta()
            self._next_id = int(meta.get("next_id", 0))
            self.catalog.set_meta(schema=SCHEMA_VERSION, model=self.embedder.name,
                                  dim=self.embedder.dim, pooling=self.embedder.pooling,
                                  chunk_tokens=self.settings.chunk_tokens,
                                  overlap=self.settings.overlap)
            yield
            if self.catalog.in_transaction:
                self.catalog.rollback()  # nothing was checkpointed: nothing changed
        except BaseException:
            if self.catalog.in_transaction:
                self.catalog.rollback()
            self._vectors = None
            self._lexical = None
            raise
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _checkpoint(self) -> None:
        """Commit vectors and catalog together; see store/faiss_store.py for the order."""
        generation = int(self.catalog.meta().get("generation", 0)) + 1
        self.vectors.commit(generation)
        self._lexical = hybrid.sync_lexical(self._lexical, self.path, self.catalog.conn,
                                            generation, self.retrieval.bm25)
        self._lexical_gen = generation
        self.catalog.set_meta(generation=generation, next_id=self._next_id)
        self.catalog.commit()
        self.vectors.collect_garbage(keep=generation)
        hybrid.finish_checkpoint(self.path, generation)
        self.catalog.begin()

    def add(self, paths: Sequence[str | Path] | str | Path, include: Sequence[str] = (),
            exclude: Sequence[str] = (), prune: bool = False,
            progress: IngestProgress | None = None, flush_chunks: int = 512,
            checkpoint_seconds: float | None = None) -> IngestReport:
        """Ingest files and folders; unchanged files are skipped by content hash.

        Work is committed every `checkpoint_seconds` (default 20, or
        $RAGLINE_CHECKPOINT_SECONDS) once `flush_chunks` chunks are pending.
        """
        if isinstance(paths, (str, Path)):
            paths = [paths]
        if checkpoint_seconds is None:
            checkpoint_seconds = float(os.environ.get("RAGLINE_CHECKPOINT_SECONDS", 20.0))
        with self._writing():
            return Ingestor(self, progress, flush_chunks=flush_chunks,
                            checkpoint_seconds=checkpoint_seconds).run(
                paths, include, exclude, prune)

    def remove(self, sources: Sequence[str | Path]) -> int:
        """Remove documents by path (a folder removes everything under it)."""
        removed = 0
        with self._writing():
            for source in sources:
                target = str(Path(source).expanduser().resolve())
                for doc in self.catalog.documents():
                    if doc.path == target or doc.path.startswith(target.rstrip("/") + "/"):
                        self.vectors.remove(np.array(self.catalog.delete_document(doc.id)))
                        removed += 1
            if removed:
                self._checkpoint()
        return removed

    # reading ------------------------------------------------------------------------------
    def search(self, query: str, k: int = 5, mode: str = hybrid.DEFAULT_MODE,
               depth: int | None = None) -> SearchResult:
        """Top-k chunks for `query`.

        `mode` is "hybrid" (default: dense and BM25 fused), "dense" (cosine similarity) or
        "lexical" (BM25). `depth` is how many candidates each side contributes to the fusion.
        """
        if not query.strip():
            raise RaglineError("the query is empty")
        if mode != "lexical":
            self.embedder.warmup()
        if mode != "dense":
            _ = self.lexical  # load before timing, like the model
        depth = max(k, depth or self.retrieval.depth)
        found = hybrid.candidates(self, query, k if mode != "hybrid" else depth, mode)
        ids, scores = hybrid.rank(found, mode, self.retrieval)
        t0 = time.perf_counter()
        ids, scores = ids[:k], scores[:k]
        rows = self.catalog.chunks_by_ids([int(i) for i in ids])
        found.timings["search_ms"] += (time.perf_counter() - t0) * 1e3
        hits = []
        for score, vid in zip(scores, ids, strict=True):
            row = rows.get(int(vid))
            if row is None:
                continue
            hits.append(Hit(rank=len(hits) + 1, score=float(score), chunk_id=row["chunk_id"],
                            source=row["source"], page=row["page"], heading=row["heading"],
                            text=row["text"], start=row["start"], end=row["end"]))
        return SearchResult(query, hits, found.timings)

    def status(self) -> dict[str, Any]:
        meta = self.catalog.meta()
        documents, chunks = self.catalog.counts()
        return {
            "index": str(self.path.resolve()),
            "model": meta.get("model", self.embedder.name),
            "dim": int(meta.get("dim", self.embedder.dim)),
            "pooling": meta.get("pooling", self.embedder.pooling),
            "chunk_tokens": self.settings.chunk_tokens,
            "overlap": self.settings.overlap,
            "documents": documents,
            "chunks": chunks,
            "vectors": len(self.vectors),
            "generation": int(meta.get("generation", 0)),
            "disk_bytes": sum(f.stat().st_size for f in self.path.iterdir() if f.is_file()),
        }

    def close(self) -> None:
        self.catalog.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
