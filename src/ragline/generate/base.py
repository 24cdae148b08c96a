"""The one interface every LLM backend offers: chat messages in, text pieces out."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ragline.errors import RaglineError

Message = dict[str, str]  # {"role": "system" | "user" | "assistant", "content": str}


class LLMError(RaglineError):
    """The model could not answer: server down, HTTP error, timeout, bad model file."""


class GenerationCancelled(RaglineError):
    """The caller stopped a generation (a client of the server went away)."""


@dataclass
class GenerationOptions:
    """Sampling settings shared by all backends; greedy by default so answers are repeatable."""

    max_tokens: int = 256
    temperature: float = 0.0
    seed: int = 0
    stop: list[str] = field(default_factory=list)

    def request(self, messages: Sequence[Message], stream: bool,
                extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The OpenAI-style chat request both backends send (llama.cpp in process, or HTTP);
        `extra` adds per-call fields such as llama.cpp's `grammar` or `logprobs`."""
        req: dict[str, Any] = {"messages": check_messages(messages), "stream": stream,
                               "max_tokens": self.max_tokens, "temperature": self.temperature,
                               "seed": self.seed}
        if self.stop:
            req["stop"] = list(self.stop)
        req.update(extra or {})
        return req


@dataclass
class GenerationStats:
    """What one call produced, for timings (tokens counted by the server when it says)."""

    completion_tokens: int = 0
    prompt_tokens: int | None = None
    finish_reason: str | None = None
    started: float = 0.0  # time.perf_counter() when the call was made
    first_piece: float | None = None  # ... when its first piece arrived
    ended: float | None = None  # ... when it was exhausted or closed
    #: per generated token, when logprobs were asked for: {"token", "logprob", "top_logprobs"}
    #: (llama.cpp reports the model's raw probabilities, before a grammar masks any token)
    logprobs: list[dict[str, Any]] = field(default_factory=list)


class Generation(Iterator[str]):
    """One call's reply: iterate it for the text pieces; `close()` stops the model.

    `stats` belong to this call alone (so concurrent callers never see each other's) and are
    complete once the reply is exhausted or closed. Backends fill them while they stream.
    """

    def __init__(self, pieces: Iterable[str], stats: GenerationStats | None = None) -> None:
        self.stats = stats if stats is not None else GenerationStats()
        self.stats.started = time.perf_counter()
        self._pieces = iter(pieces)
        self._open = True

    @classmethod
    def of(cls, reply: Iterable[str]) -> Generation:
        """A backend's reply as a Generation (a plain iterator gets empty stats)."""
        return reply if isinstance(reply, Generation) else cls(reply)

    def __iter__(self) -> Generation:
        return self

    def __next__(self) -> str:
        try:
            piece = next(self._pieces)
        except StopIteration:
            self._end()
            raise
        if self.stats.first_piece is None:
            self.stats.first_piece = time.perf_counter()
        return piece

    def close(self) -> None:
        """Stop the model (a no-op once the reply is complete); safe to call twice."""
        if self._open:
            getattr(self._pieces, "close", lambda: None)()
            self._end()

    def _end(self) -> None:
        if self._open:
            self._open = False
            self.stats.ended = time.perf_counter()


@runtime_checkable
class LLMBackend(Protocol):
    """`generate` returns the answer's text as it comes (with stream=False, in one piece), in
    a `Generation` that carries the call's own stats. A plain iterator of text is accepted
    too (`Generation.of` wraps it); it then reports no token counts."""

    name: str

    def generate(self, messages: Sequence[Message], stream: bool = True) -> Iterator[str]: ...

    # Backends that can constrain decoding also accept `extra` (request fields such as
    # `grammar`) in `generate` and set `grammar = True`; see generate/extractive.py. A
    # backend whose `packaged` is true (a small model shipped with ragline) has the packaged
    # span reader mark the answer's words instead of the model (generate/answer.py).

    def close(self) -> None: ...


def note_logprobs(stats: GenerationStats, choice: dict[str, Any]) -> None:
    """Keep the per-token log-probs of an OpenAI-style choice (whole reply or stream chunk)."""
    content = (choice.get("logprobs") or {}).get("content")
    if isinstance(content, list):
        stats.logprobs.extend(t for t in content if isinstance(t, dict))


def check_messages(messages: Sequence[Message]) -> list[Message]:
    """Fail early with a clear message instead of a server-side 400 on malformed input."""
    out = []
    for m in messages:
        if m.get("role") not in ("system", "user", "assistant") or not isinstance(
                m.get("content"), str):
            raise LLMError(f"bad chat message {m!r}: need role system/user/assistant and content")
        out.append({"role": m["role"], "content": m["content"]})
    if not out:
        raise LLMError("no messages to send to the model")
    return out
