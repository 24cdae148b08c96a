"""The storage seam: one protocol for a whole index store, whose write is one unit.

A store holds documents, chunks (text, provenance, metadata), their vectors and the lexical
postings. Readers see committed state only, through a snapshot (`read()`); a writer (`write()`)
changes all of it together and makes it visible and durable at `commit()`, or drops it at
`abort()` (or when the block exits without a commit). Every backend passes the conformance
suite in `ragline.testing.store`; the ingest pipeline and retrieval depend on this module only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from ragline.errors import IndexMismatchError, RaglineError
from ragline.types import embed_text

if TYPE_CHECKING:
    from ragline.store.filters import Filter

Scalar = str | int | float | bool
Meta = Mapping[str, Scalar]
#: (ids int64, scores float32), best first
Run = tuple[np.ndarray, np.ndarray]

#: what every store records about the model that made its vectors (checked on open)
INFO_KEYS = ("model", "dim", "pooling", "chunk_tokens", "overlap")


class MetadataTypeError(RaglineError):
    """A metadata value has another type than the field already holds in this index."""


@dataclass(frozen=True)
class DocumentRecord:
    """One ingested file. `hash` is the content + settings key that lets re-ingests skip it."""

    path: str
    hash: str
    size: int
    mtime: float
    meta: Meta = field(default_factory=dict)
    id: int = 0  # given by the store


@dataclass(frozen=True)
class ChunkRecord:
    """One chunk as stored: text, provenance, the metadata filters see, and its ids."""

    chunk_id: str
    source: str
    ordinal: int
    text: str
    text_hash: str
    start: int
    end: int
    page: int | None = None
    heading: str | None = None
    title: str | None = None
    meta: Meta = field(default_factory=dict)
    id: int = 0  # given by the store; the key of its vector and postings
    document_id: int = 0

    def embed_text(self) -> str:
        return embed_text(self.title, self.heading, self.text)


def empty_run() -> Run:
    return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)


def value_type(value: object) -> str:
    """The metadata type of a value: "boolean", "number" or "string"."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    raise MetadataTypeError(f"metadata values must be strings, numbers or booleans, "
                            f"not {type(value).__name__} ({value!r})")


def check_field_types(known: Mapping[str, str], meta: Meta, where: str = "") -> dict[str, str]:
    """New fields (name -> type) that `meta` adds; refuses a value of another type."""
    new: dict[str, str] = {}
    for name, value in meta.items():
        kind = value_type(value)
        have = known.get(name, new.get(name))
        if have is None:
            new[name] = kind
        elif have != kind:
            at = f"{where}: " if where else ""
            raise MetadataTypeError(
                f"{at}metadata field {name!r} holds {have} values in this index; {value!r} is "
                f"a {kind} (use another field name, or a {have})")
    return new


def check_info(stored: Mapping[str, str], wanted: Mapping[str, object]) -> None:
    """Refuse vectors of another model, dimension or pooling before anything is written."""
    what = {"model": "embedding model", "dim": "vector dimension", "pooling": "pooling"}
    for key, name in what.items():
        if key in stored and key in wanted and str(wanted[key]) != stored[key]:
            raise IndexMismatchError(
                f"index was built with {name} {stored[key]!r}, not {str(wanted[key])!r}; "
                "refusing to write (use another index, or the same model)")


def check_vectors(vectors: np.ndarray, dim: int, count: int | None = None) -> np.ndarray:
    """Validate shape and values before anything is written; returns contiguous float32."""
    arr = np.ascontiguousarray(vectors, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise ValueError(f"vectors have shape {arr.shape}, the index holds dimension {dim}")
    if count is not None and count != arr.shape[0]:
        raise ValueError(f"{count} chunks for {arr.shape[0]} vectors")
    if not np.isfinite(arr).all():
        raise ValueError("vectors contain NaN or infinity")
    return arr


@runtime_checkable
class StoreReader(Protocol):
    """A snapshot of committed state: every call answers from the same commit."""

    def info(self) -> dict[str, str]:
        """What was recorded with `set_info` (model, dim, ...); empty for a new store."""

    def counts(self) -> tuple[int, int]:
        """(documents, chunks)."""

    def fields(self) -> dict[str, str]:
        """Metadata field name -> "string" | "number" | "boolean"."""

    def document(self, path: str) -> DocumentRecord | None: ...

    def documents(self) -> list[DocumentRecord]:
        """All documents, by path."""

    def chunk_ids(self) -> np.ndarray:
        """Ids of all chunks, ascending."""

    def chunks(self, ids: Sequence[int]) -> dict[int, ChunkRecord]:
        """The chunks with these ids (missing ids are left out)."""

    def document_chunks(self, document_id: int) -> list[ChunkRecord]:
        """A document's chunks in order."""

    def chunk_by_key(self, chunk_id: str) -> ChunkRecord | None:
        """The chunk with this `chunk_id` (the string key citations and links carry)."""

    def chunk_counts(self) -> dict[int, int]:
        """Document id -> how many chunks it has (documents without chunks are left out)."""

    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        """Stored vectors for `ids`, in order."""

    def dense_search(self, queries: np.ndarray, k: int,
                     where: Filter | None = None) -> list[Run]:
        """Top-k chunks by inner product per query row, among those `where` keeps."""

    def lexical_search(self, query: str, k: int, where: Filter | None = None) -> Run:
        """Top-k chunks by BM25 (scores > 0 only), among those `where` keeps."""

    def stats(self) -> dict[str, object]:
        """Backend facts for `ragline status` (generation, bytes, index kind...)."""

    def verify(self) -> list[str]:
        """Problems found (empty when consistent): every chunk has one vector and postings,
        and nothing else does. Tests run it after crashes; `ragline status --check` too."""


@runtime_checkable
class StoreWriter(Protocol):
    """The one open write unit; its reads see its own uncommitted changes."""

    def info(self) -> dict[str, str]: ...

    def set_info(self, **values: str | int) -> None: ...

    def fields(self) -> dict[str, str]: ...

    def register_fields(self, meta: Meta, where: str = "") -> None:
        """Record new fields; raise MetadataTypeError (before any write) on a type change."""

    def document(self, path: str) -> DocumentRecord | None: ...

    def documents(self) -> list[DocumentRecord]: ...

    def put_document(self, doc: DocumentRecord) -> int:
        """Insert or replace the document at `doc.path`; a replaced one loses its chunks."""

    def set_document_hash(self, document_id: int, hash_: str) -> None:
        """Mark a document complete (a big file is written in slices under a partial hash)."""

    def delete_document(self, document_id: int) -> None: ...

    def add_chunks(self, document_id: int, chunks: Sequence[ChunkRecord],
                   vectors: np.ndarray) -> list[int]:
        """Store chunks with their vectors and postings; returns their new ids."""

    def vectors_for_hashes(self, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        """A stored vector for each known text hash, so unchanged text is not embedded again."""

    def commit(self) -> None:
        """Make everything written so far durable and visible; the writer stays open."""

    def abort(self) -> None:
        """Drop everything written since the last commit."""


@runtime_checkable
class IndexStore(Protocol):
    """A whole index: open one with `ragline.store.open_store`."""

    location: str

    def read(self) -> AbstractContextManager[StoreReader]: ...

    def write(self) -> AbstractContextManager[StoreWriter]:
        """The write unit; raises IndexLockedError where the backend allows one writer."""

    def close(self) -> None: ...
