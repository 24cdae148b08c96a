"""The official `openai` client against the server, unchanged: chat (streamed and not),
embeddings, models."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from serve_helpers import COFFEE, Server

openai = pytest.importorskip("openai")


@pytest.fixture(scope="module")
def client(server: Server) -> Any:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=server.read_key, max_retries=0)


def extra(obj: Any) -> dict[str, Any]:
    return obj.model_extra or {}


def test_chat_completion(client: Any, server: Server) -> None:
    r = client.chat.completions.create(model="smollm2",
                                       messages=[{"role": "user", "content": COFFEE}])
    assert r.object == "chat.completion" and r.id.startswith("chatcmpl-")
    assert r.model == "smollm2"
    choice = r.choices[0]
    assert choice.message.role == "assistant" and choice.message.content.strip()
    assert choice.finish_reason == "stop"
    assert r.usage.completion_tokens > 0
    assert isinstance(extra(r)["citations"], list)
    retrieved = extra(r)["retrieved"]
    assert retrieved and retrieved[0]["source"].endswith("coffee-brewing.md")
    for c in extra(r)["citations"]:
        assert {"n", "chunk_id", "source", "text", "supported"} <= set(c)


def test_chat_completion_streamed(client: Any) -> None:
    stream = client.chat.completions.create(
        model="smollm2", stream=True,
        messages=[{"role": "system", "content": "Be brief."},
                  {"role": "user", "content": "Who developed a printing press around 1440?"}])
    chunks = list(stream)
    assert len(chunks) > 3
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text.strip()
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    assert [c.choices[0].finish_reason for c in chunks[:-1]] == [None] * (len(chunks) - 1)
    assert isinstance(extra(last)["citations"], list)
    assert extra(last)["retrieved"][0]["source"].endswith("printing-press.txt")
    assert all("citations" not in extra(c) for c in chunks[:-1])


def test_chat_history_and_rag_options(client: Any) -> None:
    """Earlier turns are history; `k` and `where` ride in extra_body."""
    r = client.chat.completions.create(
        model="smollm2",
        messages=[{"role": "user", "content": "Who introduced movable-type printing to Europe?"},
                  {"role": "assistant", "content": "Johannes Gutenberg [1]."},
                  {"role": "user", "content": [{"type": "text", "text": "In which city?"}]}],
        extra_body={"k": 2, "where": 'type in ["txt", "html"]'})
    retrieved = extra(r)["retrieved"]
    assert len(retrieved) == 2
    assert {h["metadata"]["type"] for h in retrieved} <= {"txt", "html"}
    assert retrieved[0]["source"].endswith("printing-press.txt")


def test_chat_errors(client: Any, server: Server) -> None:
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="x", messages=[{"role": "system", "content": "hi"}])
    assert bad.value.body == "messages: no user message to answer"  # {"error": "..."}
    with pytest.raises(openai.UnprocessableEntityError):
        client.chat.completions.create(model="x", messages=[])
    stranger = openai.OpenAI(base_url=f"{server.url}/v1", api_key="rl_wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        stranger.models.list()


def test_embeddings_are_the_index_model(client: Any, server: Server) -> None:
    texts = ["How hot should coffee water be?", "honeybee waggle dance"]
    r = client.embeddings.create(model="anything", input=texts)  # base64 on the wire
    assert r.model == server.index.embedder.name
    assert [d.index for d in r.data] == [0, 1]
    got = np.array([d.embedding for d in r.data], dtype=np.float32)
    want = server.index.embedder.embed_queries(texts)
    assert got.shape == (2, server.index.embedder.dim)
    assert np.allclose(got, want, atol=1e-5)
    assert r.usage.prompt_tokens > 0
    one = client.embeddings.create(model="x", input="honeybee waggle dance",
                                   encoding_format="float")
    assert np.allclose(one.data[0].embedding, want[1], atol=1e-5)


def test_models(client: Any, server: Server) -> None:
    ids = [m.id for m in client.models.list()]
    assert ids == ["smollm2", server.index.embedder.name]
