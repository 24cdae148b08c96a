"""How the API shows a stored chunk and the documents list."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ragline.store.base import ChunkRecord, IndexStore


def chunk_dict(row: ChunkRecord) -> dict[str, Any]:
    return {"chunk_id": row.chunk_id, "source": row.source, "page": row.page,
            "heading": row.heading, "text": row.text, "metadata": dict(row.meta)}


def find_chunk(store: IndexStore, chunk_id: str) -> ChunkRecord | None:
    """The chunk a citation names, by its string key (the store has it indexed)."""
    with store.read() as reader:
        return reader.chunk_by_key(chunk_id)


def document_list(store: IndexStore) -> list[dict[str, Any]]:
    """Every document with its chunk count, from one snapshot."""
    with store.read() as reader:
        docs, counts = reader.documents(), reader.chunk_counts()
    return [{"id": d.id, "path": d.path, "name": Path(d.path).name, "meta": dict(d.meta),
             "chunks": counts.get(d.id, 0)} for d in docs]
