"""The light encoder: the same model exported to ONNX, run by ONNX Runtime.

A search with it imports neither torch nor transformers (~5 s of a cold `ragline search` before):
the tokenizer comes from `tokenizers`, the graph from the cache (`ragline.embed.export`), and
pooling and normalisation are inside the graph. Its vectors match the torch encoder's to
cosine >= 0.9999 (tests/embed/test_onnxrt.py), so one index serves both.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ragline.embed.export import VARIANTS, ensure_export
from ragline.embed.tokenized import TokenBatchEmbedder


def onnxruntime_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


def cpu_session(model: Path, threads: int, arena: bool = True) -> Any:
    """An ONNX Runtime CPU session: full graph optimisation, `threads` intra-op threads,
    sequential, quiet. Idle threads sleep instead of spinning, as OMP_WAIT_POLICY=PASSIVE does
    for torch and FAISS: on a busy 2-core machine spinning made a query 1.4x slower. The file
    is one ragline verified against its manifest; only ragline writes that cache folder."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.enable_cpu_mem_arena = arena
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # warnings about unused initialisers are noise
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])


class OnnxEmbedder(TokenBatchEmbedder):
    """ONNX Runtime on the CPU with full graph optimisation and `threads` intra-op threads.

    Queries always run the fp32 export (it matches the reference). Documents run `precision`:
    "fp32", or "int8" (dynamic int8, per-channel weights; nodes in `fp32_nodes` stay fp32),
    measured in bench/ingest.py --levers. Each export loads on first use, so a search never
    loads the int8 one and an ingest never loads the fp32 one.

    Documents run in small batches of about `doc_batch_tokens` padded tokens (a chunk of
    over half the window runs alone), `streams` batches at once (default: one per core), each
    on its own thread with `threads // streams` intra-op threads. Measured on 2 cores
    (bench/ingest.py --levers): two single-threaded runs side by side spend less CPU per token
    than one run split over 2 threads (no per-operator fork/join), and a batch of one
    256-token chunk less than 32 of them (its attention scores, 12 x 256 x 256 floats a
    layer, stay in cache); int8 activations are then scaled per chunk, which keeps its vector
    closer to fp32 and independent of other chunks. Queries keep all `threads` intra-op.
    """

    def __init__(self, path: str | Path, name: str | None = None, max_tokens: int = 256,
                 batch_size: int = 32, threads: int | None = None, batch_tokens: int = 8192,
                 precision: str = "fp32", fp32_nodes: tuple[str, ...] = (),
                 streams: int | None = None, doc_batch_tokens: int = 256) -> None:
        super().__init__(path, name, max_tokens, batch_size, threads, batch_tokens)
        self.streams = max(1, min(streams or self.threads, self.threads))
        self.doc_batch_tokens = doc_batch_tokens
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

    def _session(self, kind: str) -> Any:
        with self._lock:
            if kind not in self._sessions:
                self._sessions[kind] = self._open(kind)
        return self._sessions[kind]

    def _open(self, kind: str) -> Any:
        """`kind`: "query" (fp32, all threads) or "documents" (`precision`, per stream)."""
        docs = kind == "documents"
        precision = self.precision if docs else "fp32"
        model = ensure_export(self.path, precision, self.fp32_nodes if docs else ())
        threads = max(1, self.threads // self.streams) if docs else self.threads
        # concurrent runs of small batches of many shapes share one arena: with it, 3 of 6
        # ingests of 1,000 abstracts fell into a mode ~35% slower in CPU (30.5 s instead of
        # ~23 s); without it 6 of 6 ran at ~23 s, same peak RSS. Big batches need the arena
        # (without it, batches of 8,192 tokens took 49 s instead of 30 s)
        arena = not (docs and self.doc_batch_tokens <= self.max_tokens)
        return cpu_session(model, threads, arena)

    def warmup(self) -> None:
        """Load the query model (what a search needs)."""
        self._session("query")

    @staticmethod
    def _run(session: Any, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        out = session.run(["embedding"], {"input_ids": ids, "attention_mask": mask})[0]
        return np.ascontiguousarray(out, dtype=np.float32)

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Documents (fp32 documents in one stream share the query session)."""
        shared = self.precision == "fp32" and self.streams == 1
        return self._run(self._session("query" if shared else "documents"), ids, mask)

    def _forward_query(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return self._run(self._session("query"), ids, mask)

    def embed(self, texts: Sequence[str],
              progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Documents, `streams` small batches at a time (ONNX Runtime releases the GIL in
        `run`, and a session may be run from several threads at once)."""
        return self.embed_with(self._forward, texts, progress, streams=self.streams,
                               batch_tokens=self.doc_batch_tokens, batch_size=1)

    def embed_query(self, text: str) -> np.ndarray:
        return self._forward_query(*self._encode([text]))[0]

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.embed_with(self._forward_query, texts)
