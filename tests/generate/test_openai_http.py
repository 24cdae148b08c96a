"""The OpenAI-compatible backend against llama.cpp's real HTTP server on 127.0.0.1."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from ragline.generate.base import GenerationOptions, LLMError
from ragline.generate.openai_http import OpenAIBackend, chat_url

pytestmark = pytest.mark.slow

MESSAGES = [{"role": "system", "content": "You are brief."},
            {"role": "user", "content": "Name three colours."}]


def backend(url: str, api_key_env: str | None, **kw: object) -> OpenAIBackend:
    opts = GenerationOptions(max_tokens=12)
    return OpenAIBackend(url, model="smollm2", api_key_env=api_key_env, options=opts, **kw)


def test_chat_url_forms() -> None:
    assert chat_url("http://h:1") == "http://h:1/v1/chat/completions"
    assert chat_url("http://h:1/v1/") == "http://h:1/v1/chat/completions"
    assert chat_url("http://h:1/v1/chat/completions") == "http://h:1/v1/chat/completions"


def test_streaming(llm_server: str, api_key_env: str) -> None:
    with backend(llm_server, api_key_env) as b:
        pieces = list(b.generate(MESSAGES, stream=True))
        assert len(pieces) > 1, "a streamed answer arrives in several pieces"
        assert "".join(pieces).strip()
        assert 1 <= b.last_stats.completion_tokens <= 12
        assert b.last_stats.finish_reason in ("length", "stop")


def test_non_streaming_matches_stream(llm_server: str, api_key_env: str) -> None:
    with backend(llm_server, api_key_env) as b:
        whole = list(b.generate(MESSAGES, stream=False))
        streamed = "".join(b.generate(MESSAGES, stream=True))
    assert len(whole) == 1
    assert whole[0] == streamed  # greedy decoding, same seed: the same text either way


def test_missing_api_key_is_reported(llm_server: str) -> None:
    with backend(llm_server, None) as b, pytest.raises(LLMError, match=r"HTTP 401.*API key"):
        list(b.generate(MESSAGES))


def test_unset_key_variable_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    """A key variable that is named but empty fails before any request."""
    monkeypatch.delenv("RAGLINE_NO_SUCH_KEY", raising=False)
    with pytest.raises(LLMError, match="RAGLINE_NO_SUCH_KEY"):
        backend("http://127.0.0.1:9", "RAGLINE_NO_SUCH_KEY")


def test_server_down(closed_port: int) -> None:
    port = closed_port  # nothing listens there
    with backend(f"http://127.0.0.1:{port}", None) as b, pytest.raises(
            LLMError, match=r"cannot reach the LLM server .*connection refused"):
        list(b.generate(MESSAGES))


def test_server_error_unknown_path(llm_server: str, api_key_env: str) -> None:
    with backend(f"{llm_server}/no/such/chat/completions", api_key_env) as b, pytest.raises(
            LLMError, match=r"HTTP 404"):
        list(b.generate(MESSAGES))


def test_server_error_bad_request(llm_server: str, api_key_env: str) -> None:
    too_long = [{"role": "user", "content": "word " * 3000}]  # the server's context is 1024
    with backend(llm_server, api_key_env) as b, pytest.raises(LLMError, match=r"HTTP 400"):
        list(b.generate(too_long, stream=True))


class _Slow(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        time.sleep(3)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def slow_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_slow_server_times_out(slow_server: str) -> None:
    t = time.perf_counter()
    with backend(slow_server, None, timeout=0.5) as b, pytest.raises(
            LLMError, match=r"did not answer within 0.5s"):
        list(b.generate(MESSAGES))
    assert time.perf_counter() - t < 2.5


def test_health_is_real(llm_server: str) -> None:
    assert httpx.get(f"{llm_server}/health", timeout=2).json().get("status") == "ok"
