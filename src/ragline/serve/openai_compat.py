"""OpenAI-compatible routes, so any OpenAI client can use the index: chat completions (RAG:
the last user message is the question, earlier turns are the history), embeddings (the
index's own model) and the model list.

A completion carries two fields OpenAI's does not: `citations` (the passages the answer cites,
as in `ragline ask --json`) and `retrieved` (every passage given to the model). Streamed, they
ride on the final chunk, the one with `finish_reason`. Extra request fields `k`, `where` and
`short` work as in /v1/ask (`extra_body=` in the official client).
"""

from __future__ import annotations

import base64
import secrets
import time
from typing import Any

import numpy as np
from fastapi import Depends, FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field

from ragline.generate.answer import AskResult
from ragline.generate.citations import markers
from ragline.serve.errors import ApiError, Where, check_where
from ragline.serve.sse import EventStream, event
from ragline.serve.state import Services

MAX_INPUTS = 2048


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):  # content parts: keep the text ones
            return "".join(str(p.get("text", "")) for p in self.content
                           if p.get("type") == "text")
        return self.content or ""


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # temperature, user, ...: accepted, not used

    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    k: int | None = Field(None, ge=1, le=100)
    where: Where = None
    short: bool = False


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    input: str | list[str]
    model: str | None = None
    encoding_format: str = "float"


def conversation(messages: list[ChatMessage]) -> tuple[str, list[tuple[str, str]]]:
    """(question, history): the last user message, and the (user, assistant) turns before it."""
    last = max((i for i, m in enumerate(messages) if m.role == "user"), default=None)
    if last is None:
        raise ApiError(400, "messages: no user message to answer")
    question = messages[last].text().strip()
    if not question:
        raise ApiError(400, "messages: the last user message is empty")
    history: list[tuple[str, str]] = []
    pending: str | None = None
    for m in messages[:last]:
        if m.role == "user":
            pending = m.text()
        elif m.role == "assistant" and pending is not None:
            history.append((pending, m.text()))
            pending = None
    return question, history


def _extras(result: AskResult) -> dict[str, Any]:
    d = result.to_dict()
    return {"citations": d["citations"], "retrieved": d["retrieved"]}


def _usage(result: AskResult) -> dict[str, int]:
    prompt, completion = result.prompt_tokens, result.completion_tokens
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}


def register(app: FastAPI, state: Services) -> None:
    read = [Depends(state.read)]

    @app.post("/v1/chat/completions", tags=["openai"], dependencies=read)
    async def chat_completions(body: ChatRequest, request: Request) -> Any:
        question, history = conversation(body.messages)
        check_where(body.where)
        asker = state.asker(body.k, body.where, body.short)
        asker.history = history
        ticket = state.queue.reserve()
        run = state.queue.run(ticket, lambda on_text, cancel: asker.ask(
            question, on_text=on_text, follow_up=bool(history), cancel=cancel))
        ident = f"chatcmpl-{secrets.token_hex(12)}"
        base = {"id": ident, "created": int(time.time()), "model": state.backend.name}
        if body.stream:
            return EventStream(_chunks(state, run, base), on_close=run.close)
        result = await _complete(state, run, request)
        return {**base, "object": "chat.completion",
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": result.answer}}],
                "usage": _usage(result), **_extras(result)}

    @app.post("/v1/embeddings", tags=["openai"], dependencies=read)
    async def embeddings(body: EmbeddingRequest) -> dict[str, Any]:
        texts = [body.input] if isinstance(body.input, str) else list(body.input)
        if not texts or len(texts) > MAX_INPUTS:
            raise ApiError(422, f"input: give 1 to {MAX_INPUTS} texts")
        if body.encoding_format not in ("float", "base64"):
            raise ApiError(422, "encoding_format: use float or base64")
        embedder = state.index.embedder
        # the fp32 query path: the same vector for a text whatever else is in the request
        # (int8 document batches quantise activations per batch)
        embedded, tokens = await state.searches.run(
            lambda: (embedder.embed_queries(texts), _count_tokens(embedder, texts)))
        vectors = np.asarray(embedded, dtype=np.float32)
        data = []
        for i, vec in enumerate(vectors):
            value: Any = (base64.b64encode(vec.astype("<f4").tobytes()).decode("ascii")
                          if body.encoding_format == "base64" else vec.tolist())
            data.append({"object": "embedding", "index": i, "embedding": value})
        return {"object": "list", "data": data, "model": embedder.name,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}

    @app.get("/v1/models", tags=["openai"], dependencies=read)
    def models() -> dict[str, Any]:
        names = [state.backend.name, state.index.embedder.name]
        return {"object": "list", "data": [
            {"id": n, "object": "model", "created": 0, "owned_by": "ragline"}
            for n in dict.fromkeys(names)]}


async def _complete(state: Services, run: Any, request: Request) -> AskResult:
    """Wait for a whole answer; a client that hangs up meanwhile cancels it."""
    import anyio

    result: AskResult | None = None
    failure: BaseException | None = None
    async with anyio.create_task_group() as group:

        async def watch() -> None:
            while (await request.receive())["type"] != "http.disconnect":
                pass
            run.cancel.set()

        group.start_soon(watch)
        try:
            async for kind, value in run.events():
                if kind == "done":
                    result = value
                elif kind == "error":
                    failure = value
        finally:
            group.cancel_scope.cancel()
    if failure is not None:
        raise ApiError(502, f"the model failed: {failure}")
    if result is None:
        raise ApiError(499, "the client closed the request")
    state.metrics.tokens.inc(result.completion_tokens)
    return result


def _chunks(state: Services, run: Any, base: dict[str, Any]) -> Any:
    """chat.completion.chunk events: the role, the pieces, a last chunk with citations (and
    any [n] attributed after the pieces streamed), then `data: [DONE]`."""

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        return event(None, {**base, "object": "chat.completion.chunk", "choices": [
            {"index": 0, "delta": delta, "finish_reason": finish}], **extra})

    async def stream() -> Any:
        shown: list[str] = []
        yield chunk({"role": "assistant", "content": ""})
        async for kind, value in run.events():
            if kind == "token":
                shown.append(value)
                yield chunk({"content": value})
            elif kind == "done":
                state.metrics.tokens.inc(value.completion_tokens)
                seen = set(markers("".join(shown)))
                late = "".join(f"[{n}]" for n in markers(value.answer) if n not in seen)
                if late and not value.abstained:
                    yield chunk({"content": f" {late}"})
                yield chunk({}, "stop", usage=_usage(value), **_extras(value))
                yield event(None, "[DONE]")
            elif kind == "error":
                yield event(None, {"error": {"message": f"the model failed: {value}",
                                             "type": "server_error"}})

    return stream()


def _count_tokens(embedder: Any, texts: list[str]) -> int:
    tokenizer = getattr(embedder, "tokenizer", None)
    try:
        return sum(len(tokenizer.encode(t)) for t in texts) if tokenizer else 0
    except Exception:  # a tokenizer with another API: count words instead
        return sum(len(t.split()) for t in texts)
