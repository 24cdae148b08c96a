"""In-process llama.cpp through the prebuilt `xllamacpp` wheel.

Why xllamacpp: its CPU wheel installs in seconds, where llama-cpp-python compiles for 10-13
minutes on every fresh 2-core machine; it loads the 0.5B model in ~3 s and generates at ~20+
tokens/s there. It always starts llama.cpp's HTTP server too, even when we only call it in
process, and by default that listens on 127.0.0.1 where any local user could use it. We bind it
to a Unix socket inside a fresh 0700 temp folder instead (no TCP port at all), and also require
a random API key that never leaves this process. Its logs go to stderr; we silence them unless
RAGLINE_DEBUG=1.
"""

from __future__ import annotations

import os
import queue
import secrets
import shutil
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ragline.generate.base import (
    Generation,
    GenerationOptions,
    GenerationStats,
    LLMError,
    Message,
    note_logprobs,
)

_DONE = object()


def default_threads() -> int:
    """Cores this process may use; llama.cpp gains little past 8 on CPU."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        n = os.cpu_count() or 2
    return max(1, min(8, n))


def _error_text(payload: Any) -> str | None:
    """The message of an error payload (llama.cpp sends {"error": {...}} or {"code", ...})."""
    if not isinstance(payload, dict) or "choices" in payload:
        return None
    err = payload.get("error", payload if "message" in payload else None)
    if err is None:
        return None
    if isinstance(err, dict):
        return str(err.get("message") or err)
    return str(err)


class EmbeddedBackend:
    """A GGUF model run in this process; loads on first use, one request at a time."""

    grammar = True  # llama.cpp applies a GBNF `grammar` sent with a request

    def __init__(self, model_path: str | Path, name: str | None = None, n_ctx: int = 4096,
                 n_threads: int | None = None, options: GenerationOptions | None = None,
                 packaged: bool = False) -> None:
        self.model_path = Path(model_path)
        #: one of the small packaged models, not one the user chose: the packaged span
        #: reader marks the answer's words better than it does (generate/answer.py)
        self.packaged = packaged
        if not self.model_path.is_file():
            raise LLMError(f"model file not found: {self.model_path}")
        self.name = name or self.model_path.name
        self.n_ctx = n_ctx
        self.n_threads = n_threads or default_threads()
        self.options = options or GenerationOptions()
        #: the most recent call's stats, for a single caller; each call's own are in the
        #: Generation it returns
        self.last_stats = GenerationStats()
        self._server: Any = None
        self._sock_dir: str | None = None
        self._lock = threading.Lock()
        self._load_lock = threading.Lock()  # `load` may run in a preloading thread

    # life cycle ---------------------------------------------------------------------------
    def load(self) -> None:
        """Load the model now (otherwise the first `generate` does it)."""
        with self._load_lock:
            if self._server is None:
                self._load()

    def _load(self) -> None:
        try:
            import xllamacpp
        except ImportError:
            raise LLMError("the embedded LLM runtime is missing: pip install xllamacpp") from None
        p = xllamacpp.CommonParams()
        p.model.path = str(self.model_path)
        p.n_ctx = self.n_ctx
        p.n_parallel = 1
        # llama.cpp keeps the KV state of past prompts in host RAM (8 GiB by default): ~21 MB
        # more per distinct RAG prompt, measured, never given back. Our prompts rarely repeat
        # (new passages each time), and the slot still reuses the common prefix of the last one.
        p.cache_ram_mib = 0
        p.cpuparams.n_threads = p.cpuparams_batch.n_threads = self.n_threads
        p.verbosity = 3 if os.environ.get("RAGLINE_DEBUG") == "1" else -1
        # no TCP port: a Unix socket in a private folder, plus a key only we know
        self._sock_dir = tempfile.mkdtemp(prefix="ragline-llm-")
        p.hostnames = [os.path.join(self._sock_dir, "llm.sock")]
        p.api_keys = [secrets.token_urlsafe(32)]
        p.ui = False
        p.endpoint_slots = False
        p.endpoint_metrics = False
        try:
            self._server = xllamacpp.Server(p)
        except Exception as e:
            self._cleanup_socket()
            raise LLMError(f"could not load model {self.model_path}: {e}") from e

    @property
    def listening_address(self) -> str | None:
        return self._server.listening_address if self._server is not None else None

    def close(self) -> None:
        """Free the model and its memory; safe to call twice (waits for a load under way)."""
        with self._load_lock, self._lock:
            server, self._server = self._server, None
            del server
            self._cleanup_socket()

    def _cleanup_socket(self) -> None:
        if self._sock_dir:
            shutil.rmtree(self._sock_dir, ignore_errors=True)
            self._sock_dir = None

    def __enter__(self) -> EmbeddedBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # generation ---------------------------------------------------------------------------
    def generate(self, messages: Sequence[Message], stream: bool = True,
                 extra: Mapping[str, Any] | None = None) -> Generation:
        """The reply's text; the model runs in a worker thread so we can stream. `extra` adds
        request fields (llama.cpp's `grammar`, `logprobs`, `top_logprobs`)."""
        stats = self.last_stats = GenerationStats()
        return Generation(self._pieces(messages, stream, stats, extra), stats)

    def _pieces(self, messages: Sequence[Message], stream: bool, stats: GenerationStats,
                extra: Mapping[str, Any] | None = None) -> Iterator[str]:
        self.load()
        req = self.options.request(messages, stream, extra)
        if not stream:
            with self._lock:
                reply = self._server.handle_chat_completions(req)
            if (err := _error_text(reply)) is not None:
                raise LLMError(f"the model failed: {err}")
            _note_usage(stats, reply)
            choice = reply["choices"][0]
            note_logprobs(stats, choice)
            stats.finish_reason = choice.get("finish_reason")
            yield choice["message"].get("content") or ""
            return
        yield from self._stream(req, stats)

    def _stream(self, req: dict[str, Any], stats: GenerationStats) -> Iterator[str]:
        q: queue.Queue[Any] = queue.Queue()
        cancel = threading.Event()

        def on_chunk(chunk: Any) -> bool:
            q.put(chunk)
            return cancel.is_set()  # True tells llama.cpp to stop generating

        def work() -> None:
            try:
                with self._lock:
                    self._server.handle_chat_completions(req, on_chunk)
            except Exception as e:  # surfaced in the consumer's thread
                q.put(e)
            finally:
                q.put(_DONE)

        worker = threading.Thread(target=work, name="ragline-llm", daemon=True)
        worker.start()
        try:
            while (chunk := q.get()) is not _DONE:
                if isinstance(chunk, Exception):
                    raise LLMError(f"the model failed: {chunk}") from chunk
                if (err := _error_text(chunk)) is not None:
                    raise LLMError(f"the model failed: {err}")
                _note_usage(stats, chunk)
                for choice in chunk.get("choices") or []:
                    if choice.get("finish_reason"):
                        stats.finish_reason = choice["finish_reason"]
                    note_logprobs(stats, choice)
                    text = (choice.get("delta") or {}).get("content")
                    if text:
                        if "timings" not in chunk and "usage" not in chunk:
                            stats.completion_tokens += 1  # one piece per token
                        yield text
        finally:
            cancel.set()
            worker.join()


def _note_usage(stats: GenerationStats, reply: dict[str, Any]) -> None:
    timings = reply.get("timings") or {}
    usage = reply.get("usage") or {}
    if "predicted_n" in timings:
        stats.completion_tokens = int(timings["predicted_n"])
    elif "completion_tokens" in usage:
        stats.completion_tokens = int(usage["completion_tokens"])
    if "prompt_n" in timings:
        stats.prompt_tokens = int(timings["prompt_n"]) + int(timings.get("cache_n", 0))
    elif "prompt_tokens" in usage:
        stats.prompt_tokens = int(usage["prompt_tokens"])
