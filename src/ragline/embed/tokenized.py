"""What every encoder of a Hugging Face model folder shares: the tokenizer, the window, and
token-budget batching. A backend supplies only `_forward(ids, mask)`."""

from __future__ import annotations

import json
import os
from abc import abstractmethod
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from ragline.embed.base import BatchEmbedder


def physical_cores() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


def spread(groups: list[list[int]], streams: int) -> list[list[int]]:
    """Split the largest batches until every stream has one (a small ingest of one batch
    would otherwise leave all but one core idle)."""
    groups = list(groups)
    while len(groups) < streams:
        big = max(range(len(groups)), key=lambda i: len(groups[i]), default=None)
        if big is None or len(groups[big]) < 2:
            break
        half = len(groups[big]) // 2
        groups[big:big + 1] = [groups[big][:half], groups[big][half:]]
    return groups


def pack(seqs: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """(ids, attention mask), padded to the longest sequence in the batch."""
    width = max(len(seq) for seq in seqs)
    ids = np.zeros((len(seqs), width), dtype=np.int64)
    mask = np.zeros((len(seqs), width), dtype=np.int64)
    for row, seq in enumerate(seqs):
        ids[row, : len(seq)] = seq
        mask[row, : len(seq)] = 1
    return ids, mask


class TokenBatchEmbedder(BatchEmbedder):
    """Reads only config.json when built: opening an index, `status` or a lexical search
    load neither the tokenizer nor the model."""

    pooling = "mean"

    def __init__(self, path: str | Path, name: str | None = None, max_tokens: int = 256,
                 batch_size: int = 32, threads: int | None = None,
                 batch_tokens: int = 8192) -> None:
        self.path = Path(path)
        config = json.loads((self.path / "config.json").read_text())
        self.name = name or config.get("_name_or_path") or self.path.name
        self.dim = int(config["hidden_size"])
        self.max_tokens = min(max_tokens, int(config.get("max_position_embeddings", max_tokens)))
        self.batch_size = batch_size
        self.threads = threads or physical_cores()
        #: padded tokens per forward pass; short texts go in wider batches
        self.batch_tokens = max(batch_tokens, self.max_tokens)

    @cached_property
    def tokenizer(self) -> Any:
        """The fast tokenizer (`tokenizers`), without padding or truncation: the chunker
        counts whole texts with it, and `_ids` cuts them at the window."""
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(self.path / "tokenizer.json"))
        tokenizer.no_padding()
        tokenizer.no_truncation()
        return tokenizer

    @abstractmethod
    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Pooled, L2-normalised float32 vectors for one padded batch."""

    def _ids(self, encs: list[Any]) -> list[np.ndarray]:
        """Token ids truncated to the window, keeping [CLS] ... [SEP]."""
        cls_id = self.tokenizer.token_to_id("[CLS]")
        out = []
        for enc in encs:
            seq = enc.ids
            if len(seq) > self.max_tokens:
                seq = seq[: self.max_tokens - 1] + [seq[-1]]
            if cls_id is not None and seq and seq[0] != cls_id:
                raise ValueError("tokenizer does not add [CLS]; unsupported model")
            out.append(np.asarray(seq, dtype=np.int64))
        return out

    _pack = staticmethod(pack)

    def _encode(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Tokenize, truncate and pad to the longest text in the batch."""
        return self._pack(self._ids(self.tokenizer.encode_batch(texts)))

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        return self._forward(*self._encode(texts))

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.embed(texts)

    def token_ids(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Ids of every text cut at the window; in slices, since Encodings are large."""
        seqs: list[np.ndarray] = []
        for i in range(0, len(texts), 1024):
            seqs += self._ids(self.tokenizer.encode_batch(list(texts[i : i + 1024])))
        return seqs

    def batches(self, lengths: Sequence[int], batch_tokens: int | None = None,
                batch_size: int | None = None) -> list[list[int]]:
        """Row indices grouped longest first, each group filling `batch_tokens` padded tokens
        (at least `batch_size` rows), so padding waste stays small."""
        budget = batch_tokens or self.batch_tokens
        least = batch_size or self.batch_size
        order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
        out, start = [], 0
        while start < len(order):
            width = lengths[order[start]]  # the longest left: rows are sorted longest first
            rows = max(least, budget // max(width, 1))
            out.append(order[start : start + rows])
            start += len(out[-1])
        return out

    def embed(self, texts: Sequence[str],
              progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Tokenize once, sort by token count, and fill batches up to `batch_tokens`."""
        return self.embed_with(self._forward, texts, progress)

    def embed_with(self, forward: Callable[[np.ndarray, np.ndarray], np.ndarray],
                   texts: Sequence[str],
                   progress: Callable[[int], None] | None = None,
                   streams: int = 1, batch_tokens: int | None = None,
                   batch_size: int | None = None) -> np.ndarray:
        """`embed` through another forward pass (e.g. the query model), in `batches` (their
        sizes may be given per call). With `streams` > 1, that many batches run at once in
        threads (the backend must release the GIL and be safe to call concurrently);
        results land in input order either way."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        seqs = self.token_ids(texts)
        lengths = [len(seq) for seq in seqs]
        groups = spread(self.batches(lengths, batch_tokens, batch_size), streams)

        def run(idx: list[int]) -> np.ndarray:
            return forward(*self._pack([seqs[i] for i in idx]))

        with ThreadPoolExecutor(streams) if streams > 1 else nullcontext() as pool:
            results = pool.map(run, groups) if pool is not None else map(run, groups)
            for idx, vecs in zip(groups, results, strict=True):
                out[idx] = vecs
                self.embedded_count += len(idx)
                if progress is not None:
                    progress(len(idx))
        return out
