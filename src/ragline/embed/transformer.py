"""A Hugging Face encoder run with plain transformers: masked mean pooling, L2 norm."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from ragline.embed.base import BatchEmbedder


def _physical_cores() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


class TransformerEmbedder(BatchEmbedder):
    """Loads the model lazily: opening an index or skipping unchanged files costs nothing."""

    pooling = "mean"

    def __init__(self, path: str | Path, name: str | None = None, max_tokens: int = 256,
                 batch_size: int = 32, threads: int | None = None) -> None:
        self.path = Path(path)
        config = json.loads((self.path / "config.json").read_text())
        self.name = name or config.get("_name_or_path") or self.path.name
        self.dim = int(config["hidden_size"])
        self.max_tokens = min(max_tokens, int(config.get("max_position_embeddings", max_tokens)))
        self.batch_size = batch_size
        self.threads = threads or _physical_cores()
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
                model = AutoModel.from_pretrained(str(self.path))
                model.eval()
                self._model = model
        return self._model

    def warmup(self) -> None:
        self._load()

    def _encode(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Tokenize, truncate and pad to the longest text in the batch."""
        cls_id = self.tokenizer.token_to_id("[CLS]")
        encs = self.tokenizer.encode_batch(texts)
        width = min(max(len(e.ids) for e in encs), self.max_tokens)
        ids = np.zeros((len(encs), width), dtype=np.int64)
        mask = np.zeros((len(encs), width), dtype=np.int64)
        for row, enc in enumerate(encs):
            seq = enc.ids
            if len(seq) > width:  # keep [CLS] ... [SEP]
                seq = seq[: width - 1] + [seq[-1]]
            ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
            if cls_id is not None and seq and seq[0] != cls_id:
                raise ValueError("tokenizer does not add [CLS]; unsupported model")
        return ids, mask

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        import torch

        model = self._load()
        ids, mask = self._encode(texts)
        with torch.inference_mode():
            t_ids = torch.from_numpy(ids)
            t_mask = torch.from_numpy(mask)
            hidden = model(input_ids=t_ids, attention_mask=t_mask).last_hidden_state
            weights = t_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
        return pooled.float().numpy()
