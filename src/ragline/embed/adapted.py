"""What the packaged encoder with a shipped adapter needs to run as a pair model (the judge,
embed/cross.py; the reader, embed/reader.py): the adapter's head, a tokenizer that cuts a
(question, sentence) pair to the training window, and one lazily opened ONNX session of the
merged, exported model (embed/export.py), so it runs without torch."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from ragline.embed.export import ensure_export, read_adapter
from ragline.embed.onnxrt import cpu_session
from ragline.embed.tokenized import physical_cores


class AdaptedEncoder:
    """The ONNX session and the tokenizer load on first use (`warmup` forces it); the export
    (torch, once per adapter) before it when the cache has none."""

    def __init__(self, model_dir: str | Path, adapter: str | Path, max_tokens: int,
                 threads: int | None = None, batch_size: int = 32) -> None:
        self.model_dir = Path(model_dir)
        self.adapter = Path(adapter)
        self.max_tokens = max_tokens
        self.threads = threads or physical_cores()
        self.batch_size = batch_size
        self.arrays = read_adapter(self.adapter)
        self._lock = threading.Lock()
        self._session: Any = None

    @cached_property
    def tokenizer(self) -> Any:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
        tokenizer.no_padding()
        tokenizer.enable_truncation(self.max_tokens, strategy="longest_first")
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

    def encode(self, question: str, sentences: Sequence[str]) -> list[Any]:
        """One encoding per "[CLS] question [SEP] sentence [SEP]" (offsets, sequence ids)."""
        return list(self.tokenizer.encode_batch([(question, s) for s in sentences]))

    def run(self, output: str, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return self.session().run([output], {"input_ids": ids, "attention_mask": mask})[0]
