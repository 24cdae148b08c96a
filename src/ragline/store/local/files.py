"""The local store's generation files and the state loaded from them, shared by readers.

`vectors.<gen>.faiss` and `lexical.<gen>.npz` of the committed generation are loaded once
and shared by every reader of that generation (FAISS and BM25 searches only read them); a
finished writer hands over what it holds so readers need not load it again. Chunk ids a
filter keeps are cached per (generation, filter): a server sees the same few filters again
and again, and evaluating one scans every chunk's metadata.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections import OrderedDict
from pathlib import Path
from typing import IO

import numpy as np

from ragline.store.filters import Filter, to_sql
from ragline.store.lexical import Bm25Settings
from ragline.store.local.ann import ANN_THRESHOLD
from ragline.store.local.bm25 import Bm25Index
from ragline.store.local.catalog import Catalog
from ragline.store.local.vectors import FaissVectors, read_index, vectors_path

_GENERATION_FILE = re.compile(r"^(vectors\.(\d+)\.faiss|lexical\.(\d+)\.npz)$")
_FILTERS_KEPT = 32


def lexical_path(folder: Path, generation: int) -> Path:
    return Path(folder) / f"lexical.{generation}.npz"


def sync_lexical(lex: Bm25Index, catalog: Catalog) -> Bm25Index:
    """Make BM25 hold exactly the catalog's chunks, tokenizing only new or changed ones."""
    ids, hashes = catalog.id_hashes()
    weight = lex.settings.title_weight
    lex.update(ids, hashes, None, fetch=lambda new: catalog.lexical_texts(new, weight))
    return lex


class GenerationFiles:
    """Loads, shares and cleans up one folder's generation files. Thread-safe."""

    def __init__(self, folder: Path, lexical: Bm25Settings, vectors: bool = True,
                 ann_threshold: int = ANN_THRESHOLD) -> None:
        self.folder = folder
        self.lexical_settings = lexical
        self.ann_threshold = ann_threshold  # vectors past it get an approximate index
        self.vector_files = vectors  # False where the vectors live elsewhere (Milvus)
        self._lock = threading.Lock()
        self._vectors: FaissVectors | None = None  # of the newest generation loaded
        self._lexical: tuple[int, Bm25Index] | None = None
        self._allowed: OrderedDict[tuple[int, Filter], np.ndarray] = OrderedDict()

    def open(self, generation: int) -> tuple[FaissVectors | IO[bytes] | None,
                                             Bm25Index | IO[bytes] | None]:
        """The generation's loaded state where it is loaded, else open handles on its files
        (an unlinked file stays readable through its handle)."""
        with self._lock:
            vec: FaissVectors | IO[bytes] | None = self._vectors
            lex: Bm25Index | IO[bytes] | None = None
            if self._lexical is not None and self._lexical[0] == generation:
                lex = self._lexical[1]
        if vec is None or vec.generation != generation:  # type: ignore[union-attr]
            vec = None
            if generation > 0 and self.vector_files:
                vec = open(vectors_path(self.folder, generation), "rb")  # noqa: SIM115
        if lex is None:
            with contextlib.suppress(FileNotFoundError):
                lex = open(lexical_path(self.folder, generation), "rb")  # noqa: SIM115
        return vec, lex

    def load_vectors(self, generation: int, dim: int, fh: IO[bytes] | None) -> FaissVectors:
        vectors = FaissVectors(self.folder, dim, ann_threshold=self.ann_threshold)
        if fh is not None:
            vectors.set_index(read_index(fh), f"vectors.{generation}.faiss")
            vectors.generation = generation
        with self._lock:
            if self._vectors is None or self._vectors.generation < generation:
                self._vectors = vectors
        return vectors

    def load_lexical(self, generation: int, catalog: Catalog,
                      fh: IO[bytes] | None) -> Bm25Index:
        lex = Bm25Index.load(fh, self.lexical_settings) if fh is not None else None
        if lex is None:  # absent or damaged: rebuild from the snapshot's catalog
            lex = sync_lexical(Bm25Index(self.lexical_settings), catalog)
            with contextlib.suppress(OSError):  # a read-only folder still searches
                lex.save(lexical_path(self.folder, generation))
        with self._lock:
            if self._lexical is None or self._lexical[0] < generation:
                self._lexical = (generation, lex)
        return lex

    def allowed_ids(self, generation: int, where: Filter, catalog: Catalog) -> np.ndarray:
        """Sorted ids of the chunks `where` keeps in `generation` (cached, 32 filters)."""
        key = (generation, where)
        with self._lock:
            if key in self._allowed:
                self._allowed.move_to_end(key)
                return self._allowed[key]
        sql, params = to_sql(where, catalog.fields(), "sqlite", column="meta")
        ids = np.array(catalog.filtered_ids(sql, params), dtype=np.int64)
        with self._lock:
            self._allowed[key] = ids
            while len(self._allowed) > _FILTERS_KEPT:
                self._allowed.popitem(last=False)
        return ids

    def publish(self, generation: int, vectors: FaissVectors | None,
                 lexical: Bm25Index | None) -> None:
        """A finished writer hands its state to readers, so they need not load it again."""
        with self._lock:
            if vectors is not None and (self._vectors is None
                                        or self._vectors.generation < generation):
                self._vectors = vectors
            if lexical is not None and (self._lexical is None or self._lexical[0] < generation):
                self._lexical = (generation, lexical)

    def collect_garbage(self, keep: int) -> None:
        """Delete files of other generations and temp files left by killed writers."""
        for entry in self.folder.iterdir():
            m = _GENERATION_FILE.match(entry.name)
            stale = (m is not None and int(m.group(2) or m.group(3)) != keep) or \
                entry.name.endswith(".tmp")
            if stale:
                entry.unlink(missing_ok=True)


