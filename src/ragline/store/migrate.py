"""Copy a whole index from one store to another, vectors included: nothing is embedded again.

Works through the protocol only, so any pair of backends copies (folder -> PostgreSQL and
back); the target must be empty, and the copy is committed in slices, so a killed copy leaves
the target readable (re-run it into a fresh target).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from ragline.errors import RaglineError
from ragline.store.base import INFO_KEYS, IndexStore, Scalar

_SAMPLE: dict[str, Scalar] = {"string": "", "number": 0, "boolean": False}


def copy_store(source: IndexStore, target: IndexStore,
               on_start: Callable[[int], None] | None = None,
               on_document: Callable[[str, int], None] | None = None,
               commit_chunks: int = 5000) -> tuple[int, int]:
    """Copy every document with its chunks, metadata and vectors; returns (docs, chunks)."""
    with source.read() as reader, target.write() as writer:
        if writer.documents():
            raise RaglineError(f"{target.location} already holds documents: migrate into an "
                               "empty store")
        info = reader.info()
        if "dim" not in info:
            raise RaglineError(f"{source.location} holds no index yet")
        writer.set_info(**{k: info[k] for k in INFO_KEYS if k in info})
        # every field keeps its type, also one that no document uses any more
        writer.register_fields({name: _SAMPLE[kind] for name, kind in reader.fields().items()})
        documents = reader.documents()
        if on_start is not None:
            on_start(len(documents))
        copied = pending = 0
        for doc in documents:
            chunks = reader.document_chunks(doc.id)
            doc_id = writer.put_document(replace(doc, id=0))
            if chunks:
                vectors = reader.vectors([c.id for c in chunks])
                writer.add_chunks(doc_id, [replace(c, id=0, document_id=0) for c in chunks],
                                  vectors)
            copied += len(chunks)
            pending += len(chunks)
            if on_document is not None:
                on_document(doc.path, len(chunks))
            if pending >= commit_chunks:
                writer.commit()
                pending = 0
        writer.commit()
    return len(documents), copied
