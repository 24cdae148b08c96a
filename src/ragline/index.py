"""`Index`: the Python API, a thin facade over one store, an embedder and a chunker."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragline.embed import DEFAULT_MODEL, Embedder, create_embedder
from ragline.errors import IndexMismatchError, RaglineError
from ragline.ingest.chunker import Chunker, ChunkSettings
from ragline.retrieve.hybrid import DEFAULT_MODE, DEFAULT_SETTINGS, HybridSettings
from ragline.retrieve.retriever import Retriever, Where
from ragline.store.base import IndexStore, Meta, check_info
from ragline.store.factory import default_location, is_url, open_store
from ragline.types import SearchResult

if TYPE_CHECKING:  # ingest code (loaders, pypdf, the chunker) loads only to ingest
    from ragline.ingest.pipeline import IngestReport
    from ragline.ingest.progress import IngestProgress

_ALIASES = {"all-MiniLM-L6-v2": "sentence-transformers/all-MiniLM-L6-v2"}


def default_index_path() -> Path:
    """The index folder used when none is named: $RAGLINE_INDEX or ./.ragline."""
    return Path(default_location())


class Index:
    """An index in a folder or a database. Opening is cheap: the model loads only when text
    must be embedded."""

    def __init__(self, path: str | Path | None = None, model: str | None = None,
                 chunk_tokens: int | None = None, overlap: int | None = None,
                 embedder: Embedder | None = None, store: IndexStore | None = None,
                 settings: HybridSettings = DEFAULT_SETTINGS) -> None:
        self.store = store or open_store(path, lexical=settings.bm25)
        self.location = self.store.location
        self.path = None if is_url(self.location) else Path(self.location)
        try:
            with self.store.read() as reader:
                info = reader.info()
            wanted = embedder.name if embedder is not None else model
            if wanted is not None and "model" in info and _ALIASES.get(wanted, wanted) != \
                    info["model"]:
                raise IndexMismatchError(
                    f"index was built with embedding model {info['model']!r}; refusing to open "
                    f"it with {wanted!r} (use another index, or the same model)")
            self.embedder: Embedder = embedder or create_embedder(
                info.get("model", model or DEFAULT_MODEL))
            check_info(info, {"dim": self.embedder.dim, "pooling": self.embedder.pooling})
        except BaseException:
            self.store.close()  # refused before anything was written; do not leak the store
            raise
        default = ChunkSettings()
        stored = ChunkSettings(int(info.get("chunk_tokens", default.chunk_tokens)),
                               int(info.get("overlap", default.overlap)))
        self.settings = ChunkSettings(chunk_tokens or stored.chunk_tokens,
                                      overlap if overlap is not None else stored.overlap)
        self.retriever = Retriever(self.store, self.embedder, settings)
        self._chunker: Chunker | None = None

    @property
    def chunker(self) -> Chunker:
        if self._chunker is None:
            tokenizer = getattr(self.embedder, "tokenizer", None)
            if tokenizer is None:
                raise RaglineError(
                    f"model {self.embedder.name!r} exposes no tokenizer to chunk with")
            self._chunker = Chunker(tokenizer, self.settings)
        return self._chunker

    def settings_fingerprint(self) -> str:
        return f"{self.embedder.name}|{self.settings.chunk_tokens}|{self.settings.overlap}"

    def _info(self) -> dict[str, str | int]:
        return {"model": self.embedder.name, "dim": self.embedder.dim,
                "pooling": self.embedder.pooling, "chunk_tokens": self.settings.chunk_tokens,
                "overlap": self.settings.overlap}

    # writing ------------------------------------------------------------------------------
    def add(self, paths: Sequence[str | Path] | str | Path, include: Sequence[str] = (),
            exclude: Sequence[str] = (), prune: bool = False,
            progress: IngestProgress | None = None, flush_chunks: int = 512,
            checkpoint_seconds: float | None = None, meta: Meta | None = None) -> IngestReport:
        """Ingest files and folders; unchanged files are skipped by content hash.

        `meta` adds user fields to every document (`--meta team=legal`). Work is committed
        every `checkpoint_seconds` (default 20, or $RAGLINE_CHECKPOINT_SECONDS) once
        `flush_chunks` chunks are pending.
        """
        if isinstance(paths, (str, Path)):
            paths = [paths]
        if checkpoint_seconds is None:
            checkpoint_seconds = float(os.environ.get("RAGLINE_CHECKPOINT_SECONDS", 20.0))
        from ragline.ingest.pipeline import Ingestor

        with self.store.write() as writer:
            writer.set_info(**self._info())
            ingestor = Ingestor(writer, self.embedder, self.chunker, self.settings_fingerprint(),
                                progress, meta, flush_chunks=flush_chunks,
                                checkpoint_seconds=checkpoint_seconds)
            return ingestor.run(paths, include, exclude, prune)

    def remove(self, sources: Sequence[str | Path]) -> int:
        """Remove documents by path (a folder removes everything under it)."""
        removed = 0
        with self.store.write() as writer:
            for source in sources:
                target = str(Path(source).expanduser().resolve())
                for doc in writer.documents():
                    if doc.path == target or doc.path.startswith(target.rstrip("/") + "/"):
                        writer.delete_document(doc.id)
                        removed += 1
            writer.commit()
        return removed

    # reading ------------------------------------------------------------------------------
    def search(self, query: str, k: int = 5, mode: str = DEFAULT_MODE,
               depth: int | None = None, where: Where = None) -> SearchResult:
        """Top-k chunks for `query`.

        `mode` is "hybrid" (default: dense and BM25 fused), "dense" (cosine similarity) or
        "lexical" (BM25). `depth` is how many candidates each side contributes to the fusion.
        `where` keeps only chunks whose metadata match: `'type == "pdf" and year >= 2020'`,
        or a dict (`{"field": "year", "operator": ">=", "value": 2020}`, `{"team": "legal"}`).
        """
        return self.retriever.search(query, k, mode, depth, where)

    def search_many(self, queries: Sequence[str], k: int = 5, mode: str = DEFAULT_MODE,
                    depth: int | None = None, where: Where = None) -> list[SearchResult]:
        """`search` for many queries, results in order: one encoder batch and one vector
        search for all of them (several times the queries/s of a loop over `search`)."""
        return self.retriever.search_many(queries, k, mode, depth, where)

    def status(self) -> dict[str, Any]:
        with self.store.read() as reader:
            info = reader.info()
            documents, chunks = reader.counts()
            out: dict[str, Any] = {
                "index": self.location if self.path is None else str(self.path.resolve()),
                "model": info.get("model", self.embedder.name),
                "dim": int(info.get("dim", self.embedder.dim)),
                "pooling": info.get("pooling", self.embedder.pooling),
                "chunk_tokens": self.settings.chunk_tokens,
                "overlap": self.settings.overlap,
                "documents": documents,
                "chunks": chunks,
                **reader.stats(),
                "fields": reader.fields(),
            }
        return out

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
