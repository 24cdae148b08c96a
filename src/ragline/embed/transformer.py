"""A Hugging Face encoder run with plain transformers: masked mean pooling, L2 norm."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from ragline.embed.base import BatchEmbedder


def _physical_cores() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


def cpu_has_native_bf16() -> bool:
    """True when the CPU multiplies bf16 in hardware (AVX512-BF16 or AMX).

    Without it torch emulates bf16 and runs slower than fp32 (AVX2-only CPUs).
    """
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def resolve_dtype(dtype: str | None) -> str:
    """`auto` (the default) picks bf16 where the CPU runs it natively, else fp32.

    bf16 weights moved SciFact embeddings by at most ~1e-4 cosine and left nDCG@10 unchanged
    (bench/ingest.py); $RAGLINE_EMBED_DTYPE=fp32 forces exact fp32.
    """
    wanted = (dtype or os.environ.get("RAGLINE_EMBED_DTYPE") or "auto").lower()
    if wanted not in ("auto", "fp32", "bf16"):
        raise ValueError(f"embedding dtype must be auto, fp32 or bf16, not {wanted!r}")
    if wanted == "auto":
        return "bf16" if cpu_has_native_bf16() else "fp32"
    return wanted


class TransformerEmbedder(BatchEmbedder):
    """Loads the model lazily: opening an index or skipping unchanged files costs nothing."""

    pooling = "mean"

    def __init__(self, path: str | Path, name: str | None = None, max_tokens: int = 256,
                 batch_size: int = 32, threads: int | None = None, dtype: str | None = None,
                 batch_tokens: int = 8192) -> None:
        self.path = Path(path)
        config = json.loads((self.path / "config.json").read_text())
        self.name = name or config.get("_name_or_path") or self.path.name
        self.dim = int(config["hidden_size"])
        self.max_tokens = min(max_tokens, int(config.get("max_position_embeddings", max_tokens)))
        self.batch_size = batch_size
        self.threads = threads or _physical_cores()
        self.dtype = resolve_dtype(dtype)
        #: padded tokens per forward pass; short texts go in wider batches
        self.batch_tokens = max(batch_tokens, self.max_tokens)
        self.tokenizer = Tokenizer.from_file(str(self.path / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                import torch
                from transformers import AutoModel
                from transformers.utils import logging as hf_logging

                hf_logging.set_verbosity_error()
                hf_logging.disable_progress_bar()
                torch.set_num_threads(self.threads)
                kwargs = {"dtype": torch.bfloat16} if self.dtype == "bf16" else {}
                model = AutoModel.from_pretrained(str(self.path), **kwargs)
                model.eval()
                self._model = model
        return self._model

    def warmup(self) -> None:
        self._load()

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

    @staticmethod
    def _pack(seqs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Pad to the longest sequence in the batch."""
        width = max(len(seq) for seq in seqs)
        ids = np.zeros((len(seqs), width), dtype=np.int64)
        mask = np.zeros((len(seqs), width), dtype=np.int64)
        for row, seq in enumerate(seqs):
            ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        return ids, mask

    def _encode(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Tokenize, truncate and pad to the longest text in the batch."""
        return self._pack(self._ids(self.tokenizer.encode_batch(texts)))

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        import torch

        model = self._load()
        with torch.inference_mode():
            t_ids = torch.from_numpy(ids)
            t_mask = torch.from_numpy(mask)
            hidden = model(input_ids=t_ids, attention_mask=t_mask).last_hidden_state.float()
            weights = t_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
        return pooled.numpy()

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        return self._forward(*self._encode(texts))

    def embed(self, texts: Sequence[str],
              progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Tokenize once, sort by token count, and fill batches up to `batch_tokens`."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        seqs: list[np.ndarray] = []
        for i in range(0, len(texts), 1024):  # tokenizer Encodings are large: keep only ids
            seqs += self._ids(self.tokenizer.encode_batch(list(texts[i : i + 1024])))
        lengths = [len(seq) for seq in seqs]
        order = sorted(range(len(texts)), key=lambda i: -lengths[i])
        start = 0
        while start < len(order):
            width = lengths[order[start]]  # the longest left: rows are sorted longest first
            rows = max(self.batch_size, self.batch_tokens // max(width, 1))
            idx = order[start : start + rows]
            out[idx] = self._forward(*self._pack([seqs[i] for i in idx]))
            self.embedded_count += len(idx)
            if progress is not None:
                progress(len(idx))
            start += len(idx)
        return out
