"""The light encoder: the same model exported to ONNX, run by ONNX Runtime.

A search with it imports neither torch nor transformers (~5 s of a cold `ragline search` before):
the tokenizer comes from `tokenizers`, the graph from the cache (`ragline.embed.export`), and
pooling and normalisation are inside the graph. Its vectors match the torch encoder's to
cosine >= 0.9999 (tests/embed/test_onnxrt.py), so one index serves both.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ragline.embed.export import VARIANTS, ensure_export
from ragline.embed.tokenized import TokenBatchEmbedder


def onnxruntime_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


class OnnxEmbedder(TokenBatchEmbedder):
    """ONNX Runtime on the CPU with full graph optimisation and `threads` intra-op threads.

    Queries always run the fp32 export (it matches the reference). Documents run `precision`:
    "fp32", or "int8" (dynamic int8, per-channel weights; nodes in `fp32_nodes` stay fp32),
    measured in bench/ingest.py --levers. Each export loads on first use, so a search never
    loads the int8 one and an ingest never loads the fp32 one.
    """

    def __init__(self, path: str | Path, name: str | None = None, max_tokens: int = 256,
                 batch_size: int = 32, threads: int | None = None, batch_tokens: int = 8192,
                 precision: str = "fp32", fp32_nodes: tuple[str, ...] = ()) -> None:
        super().__init__(path, name, max_tokens, batch_size, threads, batch_tokens)
        if precision not in VARIANTS:
            raise ValueError(f"ONNX precision must be one of {', '.join(VARIANTS)}, "
                             f"not {precision!r}")
        self.precision = precision
        self.dtype = precision  # what benchmarks and `status` report, as for the torch encoder
        self.fp32_nodes = tuple(fp32_nodes) if precision != "fp32" else ()
        self._sessions: dict[str, Any] = {}
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return bool(self._sessions)

    def _session(self, precision: str) -> Any:
        with self._lock:
            if precision not in self._sessions:
                self._sessions[precision] = self._open(precision)
        return self._sessions[precision]

    def _open(self, precision: str) -> Any:
        import onnxruntime as ort

        nodes = self.fp32_nodes if precision == self.precision else ()
        model = ensure_export(self.path, precision, nodes)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3  # warnings about unused initialisers are noise
        # idle threads sleep instead of spinning, as OMP_WAIT_POLICY=PASSIVE does for torch
        # and FAISS: on a busy 2-core machine spinning made a query 1.4x slower
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # the file was verified against its manifest; only ragline writes that cache folder
        return ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])

    def warmup(self) -> None:
        """Load the query model (what a search needs)."""
        self._session("fp32")

    @staticmethod
    def _run(session: Any, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        out = session.run(["embedding"], {"input_ids": ids, "attention_mask": mask})[0]
        return np.ascontiguousarray(out, dtype=np.float32)

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Documents."""
        return self._run(self._session(self.precision), ids, mask)

    def _forward_query(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return self._run(self._session("fp32"), ids, mask)

    def embed_query(self, text: str) -> np.ndarray:
        return self._forward_query(*self._encode([text]))[0]

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.embed_with(self._forward_query, texts)
