"""The embedder seam: a model implements `embed_batch`; batching and ordering live here."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Embedder(Protocol):
    """What the index needs from an embedding model."""

    name: str
    dim: int
    pooling: str

    def embed(self, texts: Sequence[str],
              progress: Callable[[int], None] | None = None) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def warmup(self) -> None: ...


class BatchEmbedder(ABC):
    """Base for models: sorts texts by length so batches carry little padding."""

    name: str = ""
    dim: int = 0
    pooling: str = "mean"
    batch_size: int = 32
    #: number of texts passed to `embed_batch` so far; tests assert on it
    embedded_count: int = 0

    @abstractmethod
    def embed_batch(self, texts: list[str]) -> np.ndarray:
        """Return L2-normalised float32 vectors, one row per text, in order."""

    def length(self, text: str) -> int:
        """A cheap size estimate used to group similar lengths; subclasses may count tokens."""
        return len(text)

    def embed(self, texts: Sequence[str],
              progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Embed many texts in length-sorted batches and return them in input order."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        order = np.argsort([-self.length(t) for t in texts], kind="stable")
        for i in range(0, len(order), self.batch_size):
            idx = order[i : i + self.batch_size]
            out[idx] = self.embed_batch([texts[j] for j in idx])
            self.embedded_count += len(idx)
            if progress is not None:
                progress(len(idx))
        return out

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Many queries at once (`search_many`); a model whose queries take another path
        than documents (int8 documents, fp32 queries) overrides it."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            out[i] = self.embed_query(text)
        return out

    def warmup(self) -> None:
        """Load weights ahead of timing-sensitive work; models that load lazily override it."""
        return None
