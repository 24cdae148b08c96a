"""A client for any OpenAI-compatible chat server (llama.cpp server, Ollama, vLLM, OpenAI).

Streams with server-sent events. Every failure becomes one LLMError that says what to do:
the server is down (connection refused), it answered an HTTP error (with its own message), or
it was too slow (connect / read timeouts; the read timeout applies between streamed pieces, so
a long answer that keeps flowing is never cut off).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import httpx

from ragline.generate.base import (
    Generation,
    GenerationOptions,
    GenerationStats,
    LLMError,
    Message,
    note_logprobs,
)


def chat_url(base_url: str) -> str:
    """Accept `http://host:port`, `.../v1` or the full `.../chat/completions` URL."""
    url = base_url.rstrip("/")
    if url.endswith("/chat/completions"):
        return url
    if url.endswith("/v1"):
        return url + "/chat/completions"
    return url + "/v1/chat/completions"


class OpenAIBackend:
    """Chat completions over HTTP; one httpx client reused across questions."""

    #: try GBNF grammars (llama.cpp's server honours them); the asker sets this to False when
    #: the server refuses or ignores one, and answers the free-text way from then on
    grammar = True
    packaged = False  # a model the user chose: it marks the answer's words itself

    def __init__(self, base_url: str, model: str | None = None, api_key: str | None = None,
                 api_key_env: str | None = None, timeout: float = 120.0,
                 connect_timeout: float = 5.0, options: GenerationOptions | None = None) -> None:
        self.url = chat_url(base_url)
        self.model = model or "default"
        self.name = model or base_url
        if api_key is None and api_key_env:
            api_key = os.environ.get(api_key_env)
            if not api_key:
                raise LLMError(f"environment variable {api_key_env} (named by --api-key-env) "
                               "is not set or empty")
        headers = {"Accept": "text/event-stream, application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self.timeout = timeout
        self.options = options or GenerationOptions()
        #: the most recent call's stats, for a single caller; each call's own are in the
        #: Generation it returns
        self.last_stats = GenerationStats()
        self._client = httpx.Client(
            headers=headers, timeout=httpx.Timeout(timeout, connect=connect_timeout))

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> OpenAIBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _body(self, messages: Sequence[Message], stream: bool,
              extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        body = {"model": self.model, **self.options.request(messages, stream, extra)}
        if stream:
            body["stream_options"] = {"include_usage": True}
        return body

    def generate(self, messages: Sequence[Message], stream: bool = True,
                 extra: Mapping[str, Any] | None = None) -> Generation:
        """The reply's text as the server sends it; `extra` adds request fields (`grammar`:
        llama.cpp's server applies it, others may refuse or ignore it: the asker checks)."""
        stats = self.last_stats = GenerationStats()
        return Generation(self._pieces(messages, stream, stats, extra), stats)

    def _pieces(self, messages: Sequence[Message], stream: bool, stats: GenerationStats,
                extra: Mapping[str, Any] | None = None) -> Iterator[str]:
        body = self._body(messages, stream, extra)
        try:
            with self._client.stream("POST", self.url, json=body) as response:
                if response.status_code >= 400:
                    response.read()
                    raise LLMError(self._http_error(response))
                if stream and "text/event-stream" in response.headers.get("content-type", ""):
                    yield from self._events(response, stats)
                else:
                    response.read()
                    yield self._whole(response, stats)
        except httpx.ConnectError as e:
            raise LLMError(f"cannot reach the LLM server at {self.url}: {_reason(e)} "
                           "(is it running? check --llm-url)") from e
        except httpx.TimeoutException as e:
            kind = "connect" if isinstance(e, httpx.ConnectTimeout) else "answer"
            limit = self._client.timeout.connect if kind == "connect" else self.timeout
            raise LLMError(f"the LLM server at {self.url} did not {kind} within {limit:g}s "
                           "(slow or overloaded; raise the timeout with --llm-timeout)") from e
        except httpx.HTTPError as e:
            raise LLMError(f"talking to the LLM server at {self.url} failed: "
                           f"{type(e).__name__}: {e}") from e

    def _http_error(self, response: httpx.Response) -> str:
        detail = response.text.strip()
        try:
            payload = response.json()
            err = payload.get("error", payload) if isinstance(payload, dict) else payload
            detail = str(err.get("message", err)) if isinstance(err, dict) else str(err)
        except ValueError:
            pass
        hint = {401: " (check the API key: --api-key-env)", 404: " (check --llm-url and "
                "--llm-model)"}.get(response.status_code, "")
        return (f"the LLM server at {self.url} answered HTTP {response.status_code}: "
                f"{detail[:300]}{hint}")

    def _whole(self, response: httpx.Response, stats: GenerationStats) -> str:
        try:
            payload = response.json()
            choice = payload["choices"][0]
            _usage(stats, payload)
            note_logprobs(stats, choice)
            stats.finish_reason = choice.get("finish_reason")
            return choice["message"].get("content") or ""
        except (ValueError, KeyError, IndexError, TypeError) as e:
            raise LLMError(f"the LLM server at {self.url} sent an answer that is not an "
                           f"OpenAI chat completion: {response.text[:200]!r}") from e

    def _events(self, response: httpx.Response, stats: GenerationStats) -> Iterator[str]:
        counted = 0
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue  # blank separators, ": ping" comments, "event:" lines
            data = line[5:].strip()
            if data == "[DONE]":
                break
            try:
                chunk = json.loads(data)
            except ValueError as e:
                raise LLMError(f"the LLM server at {self.url} sent a malformed event: "
                               f"{data[:200]!r}") from e
            if "error" in chunk:
                err = chunk["error"]
                msg = err.get("message", err) if isinstance(err, dict) else err
                raise LLMError(f"the LLM server at {self.url} failed mid-answer: {msg}")
            _usage(stats, chunk)
            for choice in chunk.get("choices") or []:
                if choice.get("finish_reason"):
                    stats.finish_reason = choice["finish_reason"]
                note_logprobs(stats, choice)
                text = (choice.get("delta") or {}).get("content")
                if text:
                    counted += 1
                    yield text
        if not stats.completion_tokens:
            stats.completion_tokens = counted  # one piece per token, near enough


def _usage(stats: GenerationStats, payload: dict[str, Any]) -> None:
    usage = payload.get("usage") or {}
    if usage.get("completion_tokens"):
        stats.completion_tokens = int(usage["completion_tokens"])
    if usage.get("prompt_tokens"):
        stats.prompt_tokens = int(usage["prompt_tokens"])


def _reason(e: Exception) -> str:
    text = str(e) or type(e).__name__
    return "connection refused" if "refused" in text.lower() else text
