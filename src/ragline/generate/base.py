"""The one interface every LLM backend offers: chat messages in, text pieces out."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ragline.errors import RaglineError

Message = dict[str, str]  # {"role": "system" | "user" | "assistant", "content": str}


class LLMError(RaglineError):
    """The model could not answer: server down, HTTP error, timeout, bad model file."""


@dataclass
class GenerationOptions:
    """Sampling settings shared by all backends; greedy by default so answers are repeatable."""

    max_tokens: int = 256
    temperature: float = 0.0
    seed: int = 0
    stop: list[str] = field(default_factory=list)

    def request(self, messages: Sequence[Message], stream: bool) -> dict[str, Any]:
        """The OpenAI-style chat request both backends send (llama.cpp in process, or HTTP)."""
        req: dict[str, Any] = {"messages": check_messages(messages), "stream": stream,
                               "max_tokens": self.max_tokens, "temperature": self.temperature,
                               "seed": self.seed}
        if self.stop:
            req["stop"] = list(self.stop)
        return req


@dataclass
class GenerationStats:
    """What the last call produced, for timings (tokens counted by the server when it says)."""

    completion_tokens: int = 0
    prompt_tokens: int | None = None
    finish_reason: str | None = None


@runtime_checkable
class LLMBackend(Protocol):
    """`generate` yields the answer's text as it comes; with stream=False, in one piece."""

    name: str
    last_stats: GenerationStats

    def generate(self, messages: Sequence[Message], stream: bool = True) -> Iterator[str]: ...

    def close(self) -> None: ...


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
