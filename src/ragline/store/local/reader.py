"""Reads of one snapshot of the local store: SQLite rows plus that generation's files."""

from __future__ import annotations

from collections.abc import Sequence
from typing import IO

import numpy as np

from ragline.store.base import ChunkRecord, DocumentRecord, Run, empty_run
from ragline.store.filters import Filter
from ragline.store.local.bm25 import Bm25Index
from ragline.store.local.catalog import SCHEMA_VERSION, Catalog
from ragline.store.local.files import GenerationFiles
from ragline.store.local.vectors import EXACT_LABEL, FaissVectors


class LocalReader:
    """Reads of one snapshot; vectors and BM25 load on first use and are shared by readers."""

    def __init__(self, files: GenerationFiles, catalog: Catalog, info: dict[str, str],
                 generation: int, vectors: FaissVectors | IO[bytes] | None,
                 lexical: Bm25Index | IO[bytes] | None) -> None:
        self._files = files
        self._catalog = catalog
        self._info = info
        self._generation = generation
        self._vec_source = vectors
        self._lex_source = lexical

    def _vectors(self) -> FaissVectors:
        src = self._vec_source
        if not isinstance(src, FaissVectors):
            dim = int(self._info.get("dim", 0))
            src = self._vec_source = self._files.load_vectors(self._generation, dim, src)
        return src

    def _lexical(self) -> Bm25Index:
        src = self._lex_source
        if not isinstance(src, Bm25Index):
            src = self._lex_source = self._files.load_lexical(self._generation,
                                                               self._catalog, src)
        return src

    def info(self) -> dict[str, str]:
        return dict(self._info)

    def counts(self) -> tuple[int, int]:
        return self._catalog.counts()

    def fields(self) -> dict[str, str]:
        return self._catalog.fields()

    def document(self, path: str) -> DocumentRecord | None:
        return self._catalog.document(path)

    def documents(self) -> list[DocumentRecord]:
        return self._catalog.documents()

    def chunk_ids(self) -> np.ndarray:
        return np.array(self._catalog.chunk_ids(), dtype=np.int64)

    def chunks(self, ids: Sequence[int]) -> dict[int, ChunkRecord]:
        return self._catalog.chunks(ids)

    def document_chunks(self, document_id: int) -> list[ChunkRecord]:
        return self._catalog.document_chunks(document_id)

    def chunk_by_key(self, chunk_id: str) -> ChunkRecord | None:
        return self._catalog.chunk_by_key(chunk_id)

    def chunk_counts(self) -> dict[int, int]:
        return self._catalog.chunk_counts()

    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        return self._vectors().get(np.asarray(ids, dtype=np.int64))

    def _allowed(self, where: Filter | None) -> np.ndarray | None:
        if where is None:
            return None
        return self._files.allowed_ids(self._generation, where, self._catalog)

    def dense_search(self, queries: np.ndarray, k: int,
                     where: Filter | None = None) -> list[Run]:
        allowed = self._allowed(where)
        q = np.atleast_2d(queries)
        if "dim" not in self._info:
            return [empty_run() for _ in range(len(q))]
        scores, ids = self._vectors().search(q, k, allowed)
        out: list[Run] = []
        for row_ids, row_scores in zip(ids, scores, strict=True):
            keep = row_ids >= 0
            out.append((row_ids[keep].astype(np.int64), row_scores[keep].astype(np.float32)))
        return out

    def lexical_search(self, query: str, k: int, where: Filter | None = None) -> Run:
        allowed = self._allowed(where)
        return self._lexical().search(query, k, allowed)

    def stats(self) -> dict[str, object]:
        files = [f for f in self._files.folder.iterdir() if f.is_file()]
        return {"store": "local (SQLite + FAISS + BM25 files)",
                "vectors": self.counts()[1],  # verify() checks the file agrees; not loaded
                "generation": self._generation,
                "schema": self._info.get("schema", SCHEMA_VERSION),
                "vector_index": self._info.get("vector_index", EXACT_LABEL),
                "disk_bytes": sum(f.stat().st_size for f in files)}

    def vector_ids(self) -> list[int]:
        """Ids that hold a vector in this snapshot, ascending (for `verify`)."""
        return sorted(self._vectors().ids().tolist()) if "dim" in self._info else []

    def verify(self) -> list[str]:
        ids, hashes = self._catalog.id_hashes()
        problems = []
        vec = self.vector_ids()
        if vec != ids:
            problems.append(f"catalog holds {len(ids)} chunks, the vector store {len(vec)} "
                            f"({len(set(ids) ^ set(vec))} differ)")
        lex = self._lexical()
        if dict(zip(lex.ids.tolist(), lex.hashes, strict=True)) != dict(
                zip(ids, hashes, strict=True)):
            problems.append(f"catalog holds {len(ids)} chunks, BM25 {len(lex)} (or their "
                            "texts differ)")
        return problems
