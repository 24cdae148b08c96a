"""Lookups the store protocol offers only by scanning: a chunk by its `chunk_id` (the web page
opens a cited passage with it) and the number of chunks per document.

One scan of the chunk rows builds both maps; they are kept while the set of chunk ids stays
the same (a commit that adds or removes chunks changes it), so repeated lookups cost one
`chunk_ids()` call and one row fetch. A hit is checked against the row it names.
"""

from __future__ import annotations

import hashlib
import re
import threading
from pathlib import Path
from typing import Any

from ragline.store.base import ChunkRecord, IndexStore, StoreReader

_CHUNK_ID = re.compile(r"^[0-9a-f]{1,64}$")
_BATCH = 2000


class Catalog:
    def __init__(self, store: IndexStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._key: str | None = None
        self._by_chunk: dict[str, int] = {}
        self._per_document: dict[int, int] = {}

    def _refresh(self, reader: StoreReader) -> None:
        ids = reader.chunk_ids()
        key = f"{len(ids)}:{hashlib.blake2b(ids.tobytes(), digest_size=16).hexdigest()}"
        with self._lock:
            if key == self._key:
                return
        by_chunk: dict[str, int] = {}
        per_document: dict[int, int] = {}
        id_list = [int(i) for i in ids]
        for start in range(0, len(id_list), _BATCH):
            for vid, row in reader.chunks(id_list[start:start + _BATCH]).items():
                by_chunk[row.chunk_id] = vid
                per_document[row.document_id] = per_document.get(row.document_id, 0) + 1
        with self._lock:
            self._key, self._by_chunk, self._per_document = key, by_chunk, per_document

    def chunk(self, chunk_id: str) -> ChunkRecord | None:
        if not _CHUNK_ID.match(chunk_id):
            return None
        with self.store.read() as reader:
            self._refresh(reader)
            with self._lock:
                vid = self._by_chunk.get(chunk_id)
            if vid is None:
                return None
            row = reader.chunks([vid]).get(vid)
        return row if row is not None and row.chunk_id == chunk_id else None

    def documents(self) -> list[dict[str, Any]]:
        with self.store.read() as reader:
            self._refresh(reader)
            docs = reader.documents()
            with self._lock:
                counts = dict(self._per_document)
        return [{"id": d.id, "path": d.path, "name": Path(d.path).name, "meta": dict(d.meta),
                 "chunks": counts.get(d.id, 0)} for d in docs]


def chunk_dict(row: ChunkRecord) -> dict[str, Any]:
    return {"chunk_id": row.chunk_id, "source": row.source, "page": row.page,
            "heading": row.heading, "text": row.text, "metadata": dict(row.meta)}
