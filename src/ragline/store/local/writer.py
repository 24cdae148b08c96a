"""The local store's write unit: a SQLite transaction plus in-memory FAISS and BM25 state."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import replace

import numpy as np

from ragline.errors import RaglineError
from ragline.store.base import (
    ChunkRecord,
    DocumentRecord,
    Meta,
    check_field_types,
    check_info,
    check_vectors,
)
from ragline.store.local.bm25 import Bm25Index
from ragline.store.local.catalog import SCHEMA_VERSION, Catalog
from ragline.store.local.files import GenerationFiles, lexical_path, sync_lexical
from ragline.store.local.vectors import FaissVectors


class LocalWriter:
    """The open write unit: a SQLite transaction plus in-memory FAISS and BM25 state."""

    def __init__(self, files: GenerationFiles, conn: sqlite3.Connection) -> None:
        self._files = files
        self._conn = conn
        self._catalog = Catalog(conn)
        self._committed: tuple[FaissVectors | None, Bm25Index | None] | None = None
        self._begin()

    def _begin(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")
        meta = self._catalog.meta()
        self._info = meta
        self._generation = int(meta.get("generation", 0))
        self._next_id = int(meta.get("next_id", 0))
        self._fields = self._catalog.fields()
        self._vecs: FaissVectors | None = None
        self._lex: Bm25Index | None = None
        self._dirty = False

    def close(self) -> None:
        """Drop what was not committed; hand the committed state to readers."""
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")
        if self._committed is not None and not self._dirty:
            self._files.publish(self._generation, *self._committed)

    # state ----------------------------------------------------------------------------------
    def _vectors(self) -> FaissVectors:
        if self._vecs is None:
            if "dim" not in self._info:
                raise RaglineError("set_info(dim=...) must come before the first vectors")
            self._vecs = FaissVectors(self._files.folder, int(self._info["dim"]),
                                      self._generation, self._files.ann_threshold)
        return self._vecs

    def info(self) -> dict[str, str]:
        return dict(self._info)

    def set_info(self, **values: str | int) -> None:
        check_info(self._info, values)
        changed = {k: str(v) for k, v in values.items() if self._info.get(k) != str(v)}
        if changed:
            self._catalog.set_meta(**changed)
            self._info.update(changed)
            self._dirty = True

    def fields(self) -> dict[str, str]:
        return dict(self._fields)

    def register_fields(self, meta: Meta, where: str = "") -> None:
        new = check_field_types(self._fields, meta, where)
        if new:
            self._catalog.add_fields(new)
            self._fields.update(new)
            self._dirty = True

    def document(self, path: str) -> DocumentRecord | None:
        return self._catalog.document(path)

    def documents(self) -> list[DocumentRecord]:
        return self._catalog.documents()

    # changes --------------------------------------------------------------------------------
    def put_document(self, doc: DocumentRecord) -> int:
        self.register_fields(doc.meta, doc.path)
        existing = self._catalog.document(doc.path)
        if existing is not None:
            self._vectors().remove(self._catalog.delete_chunks_of(existing.id))
        self._dirty = True
        return self._catalog.upsert_document(doc, time.time())

    def set_document_hash(self, document_id: int, hash_: str) -> None:
        self._catalog.set_hash(document_id, hash_)
        self._dirty = True

    def delete_document(self, document_id: int) -> None:
        self._vectors().remove(self._catalog.delete_document(document_id))
        self._dirty = True

    def add_chunks(self, document_id: int, chunks: Sequence[ChunkRecord],
                   vectors: np.ndarray) -> list[int]:
        arr = check_vectors(vectors, self._vectors().dim, len(chunks))
        for c in chunks:
            self.register_fields(c.meta, c.source)
        ids = list(range(self._next_id + 1, self._next_id + 1 + len(chunks)))
        rows = [replace(c, id=i, document_id=document_id)
                for c, i in zip(chunks, ids, strict=True)]
        self._catalog.insert_chunks(rows)
        self._vectors().add(np.array(ids, dtype=np.int64), arr)
        self._next_id += len(chunks)
        self._dirty = True
        return ids

    def vectors_for_hashes(self, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        known = self._catalog.ids_by_text_hash(hashes)
        if not known:
            return {}
        vecs = self._vectors().get(np.array(list(known.values()), dtype=np.int64))
        return dict(zip(known, vecs, strict=True))

    def commit(self) -> None:
        """Vector and BM25 files of the next generation first, then the catalog commit."""
        if not self._dirty:
            return
        generation = self._generation + 1
        vectors = self._vectors() if "dim" in self._info else None
        if vectors is not None:
            vectors.commit(generation)
            if "vector_index" not in self._info or getattr(vectors, "ann", None) is not None:
                # first commit, or the IVF was just built: record what (a reloaded index
                # knows its nlist/nprobe only, not how it was tuned)
                self._catalog.set_meta(vector_index=vectors.describe())
        lexical = self._lexical()
        lexical.save(lexical_path(self._files.folder, generation))
        self._catalog.set_meta(generation=generation, next_id=self._next_id,
                               schema=SCHEMA_VERSION)
        self._conn.execute("COMMIT")
        self._files.collect_garbage(keep=generation)
        self._generation = generation
        self._committed = (vectors, lexical)
        self._dirty = False
        self._conn.execute("BEGIN IMMEDIATE")
        self._info = self._catalog.meta()

    def _lexical(self) -> Bm25Index:
        if self._lex is None:
            settings = self._files.lexical_settings
            path = lexical_path(self._files.folder, self._generation)
            self._lex = (Bm25Index.load(path, settings) if path.exists() else None) \
                or Bm25Index(settings)
        return sync_lexical(self._lex, self._catalog)

    def abort(self) -> None:
        """Back to the last commit: the catalog rolls back, vectors and BM25 reload."""
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")
        self._begin()
