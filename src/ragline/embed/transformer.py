"""A Hugging Face encoder run with plain transformers: masked mean pooling, L2 norm."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from ragline.embed.tokenized import TokenBatchEmbedder


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


class TransformerEmbedder(TokenBatchEmbedder):
    """The reference encoder. Loads torch and the model lazily: opening an index or skipping
    unchanged files costs nothing."""

    def __init__(self, path: str | Path, name: str | None = None, max_tokens: int = 256,
                 batch_size: int = 32, threads: int | None = None, dtype: str | None = None,
                 batch_tokens: int = 8192) -> None:
        super().__init__(path, name, max_tokens, batch_size, threads, batch_tokens)
        self.dtype = resolve_dtype(dtype)
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
