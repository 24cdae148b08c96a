"""The JSON API on a real server: search, ask (SSE), chunks, documents, health, metrics, page."""

from __future__ import annotations

import importlib.util
import json
from typing import Any

from serve_helpers import ASK_KEYS, COFFEE, Server, done_event, metric, read_events

HIT_KEYS = {"rank", "score", "chunk_id", "source", "page", "heading", "text", "metadata"}


def test_search_returns_the_search_result_dict(server: Server) -> None:
    with server.client() as c:
        r = c.post("/v1/search", json={"query": "water temperature for coffee", "k": 3})
    assert r.status_code == 200, r.text
    d = r.json()
    assert set(d) == {"query", "results", "timings"}
    assert d["query"] == "water temperature for coffee"
    assert [h["rank"] for h in d["results"]] == [1, 2, 3]
    assert all(set(h) == HIT_KEYS for h in d["results"])
    assert d["results"][0]["source"].endswith("coffee-brewing.md")
    assert d["results"][0]["metadata"]["type"] == "md"
    # exactly what the Python API returns for the same search
    expected = server.index.search("water temperature for coffee", k=3).to_dict()
    assert [h["chunk_id"] for h in d["results"]] == [h["chunk_id"] for h in expected["results"]]


def test_search_modes_and_filters(server: Server) -> None:
    with server.client() as c:
        lexical = c.post("/v1/search", json={"query": "Gutenberg", "mode": "lexical", "k": 2})
        as_text = c.post("/v1/search", json={"query": "how do bees talk", "where": 'type == "txt"'})
        as_dict = c.post("/v1/search", json={"query": "how do bees talk",
                                             "where": {"type": "txt"}})
        bad = c.post("/v1/search", json={"query": "bees", "where": "type =="})
    assert lexical.status_code == 200
    assert lexical.json()["results"][0]["source"].endswith("printing-press.txt")
    for r in (as_text, as_dict):
        assert r.status_code == 200, r.text
        assert r.json()["results"]
        assert {h["metadata"]["type"] for h in r.json()["results"]} == {"txt"}
    assert bad.status_code == 400
    assert bad.json()["error"].startswith("filter: ")


def test_malformed_requests_are_422_naming_the_field(server: Server) -> None:
    with server.client() as c:
        k = c.post("/v1/search", json={"query": "x", "k": 0})
        too_big = c.post("/v1/search", json={"query": "x", "k": 101})
        mode = c.post("/v1/search", json={"query": "x", "mode": "fuzzy"})
        where = c.post("/v1/search", json={"query": "x", "where": 5})
        missing = c.post("/v1/search", json={"k": 2})
        unknown = c.post("/v1/search", json={"query": "x", "top_k": 2})
        broken = c.post("/v1/search", content=b'{"query": "x",',
                        headers={"Content-Type": "application/json"})
        ask = c.post("/v1/ask", json={"question": "x", "short": "maybe"})
    for r, field in ((k, "k"), (too_big, "k"), (mode, "mode"), (where, "where"),
                     (missing, "query"), (unknown, "top_k"), (broken, "body"), (ask, "short")):
        assert r.status_code == 422, (field, r.text)
        assert set(r.json()) == {"error"}
        assert r.json()["error"].startswith(f"{field}: "), r.json()
    assert "invalid JSON" in broken.json()["error"]


def test_ask_streams_tokens_then_the_ask_json(server: Server) -> None:
    with server.client() as c, c.stream("POST", "/v1/ask", json={"question": COFFEE}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = read_events(r)
    tokens = [json.loads(data) for name, data in events if name == "token"]
    assert len(tokens) > 1, events[:5]
    assert [name for name, _ in events[:-1]] == ["token"] * (len(events) - 1)
    assert all(set(t) == {"text"} for t in tokens)
    done = done_event(events)
    assert set(done) == ASK_KEYS
    assert done["question"] == COFFEE and done["model"] == "smollm2"
    assert done["abstained"] is False
    assert "".join(t["text"] for t in tokens).strip()
    assert set(done["timings"]) == {"retrieve_ms", "first_token_ms", "total_ms", "tokens_per_s"}
    assert done["timings"]["tokens_per_s"] > 0
    # the passages are those of the same search through the API
    with server.client() as c:
        hits = c.post("/v1/search", json={"query": COFFEE, "k": 5}).json()["results"]
    assert [h["chunk_id"] for h in done["retrieved"]] == [h["chunk_id"] for h in hits]
    # generated tokens are counted
    assert metric(server.metrics(), "ragline_generated_tokens_total") > 0


def test_ask_off_topic_abstains_without_the_model(server: Server) -> None:
    with server.client() as c, c.stream("POST", "/v1/ask", json={
            "question": "What is the capital of Peru?", "k": 2}) as r:
        events = read_events(r)
    done = done_event(events)
    assert done["abstained"] is True and done["abstain_reason"] == "retrieval"
    assert len(done["retrieved"]) == 2
    assert json.loads(events[0][1]) == {"text": done["answer"]}


def test_ask_with_a_bad_filter_is_400_before_streaming(server: Server) -> None:
    with server.client() as c:
        r = c.post("/v1/ask", json={"question": COFFEE, "where": "year >>> 3"})
    assert r.status_code == 400
    assert r.json()["error"].startswith("filter: ")


def test_chunk_by_id_and_unknown_ids(server: Server) -> None:
    with server.client() as c:
        hit = c.post("/v1/search", json={"query": "Gutenberg Bible", "k": 1}).json()["results"][0]
        r = c.get(f"/v1/chunks/{hit['chunk_id']}")
        unknown = c.get("/v1/chunks/0123456789abcdef")
        odd = c.get("/v1/chunks/not-an-id")
    assert r.status_code == 200
    assert r.json() == {k: hit[k] for k in ("chunk_id", "source", "page", "heading", "text",
                                             "metadata")}
    assert unknown.status_code == 404 and "0123456789abcdef" in unknown.json()["error"]
    assert odd.status_code == 404


def test_documents_list_and_health(server: Server) -> None:
    with server.client() as c:
        docs = c.get("/v1/documents").json()["documents"]
    assert sorted(d["name"] for d in docs) == ["coffee-brewing.md", "honeybees.html",
                                               "printing-press.txt", "ragline-guide.md"]
    for d in docs:
        assert set(d) == {"id", "path", "name", "meta", "chunks"}
        assert d["path"].endswith(d["name"]) and d["meta"]["source"] == d["path"]
        assert d["chunks"] >= 1
    health = httpx_get(server, "/healthz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "documents": 4,
                             "chunks": sum(d["chunks"] for d in docs)}


def test_metrics_count_requests_by_endpoint_and_status(server: Server) -> None:
    with server.client() as c:
        assert c.post("/v1/search", json={"query": "bees"}).status_code == 200
        assert c.get("/v1/jobs/nope").status_code == 404
    text = server.metrics()
    ok = metric(text, "ragline_http_requests_total", method="POST", endpoint="/v1/search",
                status="200")
    assert ok is not None and ok >= 1
    assert metric(text, "ragline_http_requests_total", method="GET",
                  endpoint="/v1/jobs/{job_id}", status="404") >= 1
    assert metric(text, "ragline_http_request_duration_seconds_count", method="POST",
                  endpoint="/v1/search") >= 1
    assert metric(text, "ragline_index_documents") == 4
    assert metric(text, "ragline_index_chunks") > 4
    assert "ragline_generated_tokens_total" in text


def test_page_static_and_docs(server: Server) -> None:
    page = httpx_get(server, "/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<html" in page.text.lower()
    css = httpx_get(server, "/static/style.css")
    assert css.status_code == 200
    assert httpx_get(server, "/static/nope.js").status_code == 404
    docs = httpx_get(server, "/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    if importlib.util.find_spec("fastapi_offline"):  # the `serve` extra: no CDN needed
        assert "/docs-assets/swagger-ui-bundle.js" in docs.text and "cdn" not in docs.text
        assert httpx_get(server, "/docs-assets/swagger-ui-bundle.js").status_code == 200
    spec = httpx_get(server, "/openapi.json").json()
    assert {"/v1/search", "/v1/ask", "/v1/documents", "/v1/jobs/{job_id}",
            "/v1/chunks/{chunk_id}", "/v1/chat/completions", "/v1/embeddings",
            "/v1/models", "/healthz"} <= set(spec["paths"])
    unknown = httpx_get(server, "/v2/nothing")
    assert unknown.status_code == 404 and set(unknown.json()) == {"error"}


def httpx_get(server: Server, path: str):
    with server.client(key=None) as c:
        return c.get(path)


def test_ask_honours_the_served_confidence_threshold(make_server: Any, llm: Any) -> None:
    """The index's `min_confidence` reaches the server's answers: nothing clears 1.01."""
    strict = make_server(llm, min_confidence=1.01)
    with strict.client() as c, c.stream("POST", "/v1/ask", json={"question": COFFEE}) as r:
        done = done_event(read_events(r))
    assert done["abstained"] is True and done["abstain_reason"] in ("confidence", "model")
    assert done["retrieved"]  # the passages were found; the quote was not trusted
