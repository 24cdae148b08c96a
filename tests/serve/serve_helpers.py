"""Helpers for the server tests: a real server in a thread, SSE and Prometheus parsing."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "src" / "ragline" / "data" / "example"
COFFEE = "What water temperature is best for brewing coffee?"
#: the keys of `ragline ask --json` (AskResult.to_dict)
ASK_KEYS = {"question", "answer", "abstained", "abstain_reason", "relevance", "citations",
            "dropped_citations", "retrieved", "model", "timings",
            "mode", "span_by", "span", "sentence", "confidence", "signals", "note"}


def wait_until(check: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    """Poll `check` until it returns something truthy (a readiness probe, never a fixed wait)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.02)


def read_events(response: httpx.Response) -> list[tuple[str | None, str]]:
    """Server-sent events of a streamed response, as (event name, data)."""
    events: list[tuple[str | None, str]] = []
    name: str | None = None
    data: list[str] = []
    for line in response.iter_lines():
        if line == "":
            if data:
                events.append((name, "\n".join(data)))
            name, data = None, []
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[6:] if line.startswith("data: ") else line[5:])
    if data:
        events.append((name, "\n".join(data)))
    return events


def metric(text: str, name: str, **labels: str) -> float | None:
    """A sample's value in Prometheus text, or None when absent."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        sample, _, rest = head.partition("{")
        if sample != name:
            continue
        got = ",".join(sorted(p for p in rest.rstrip("}").split(",") if p))
        if got == want:
            return float(value)
    return None


class Server:
    """A real uvicorn server on 127.0.0.1 (a socket bound by us: no port race), with a read
    and a write key."""

    def __init__(self, app: Any, index: Any, folder: Path) -> None:
        import uvicorn

        from ragline.serve.keys import KeyStore

        self.app = app
        self.state = app.state.ragline
        self.index = index
        self.folder = folder
        self.keys = KeyStore(folder)
        self.read_key = self.keys.create("read", "tests-read")[1]
        self.write_key = self.keys.create("write", "tests-write")[1]
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on",
                                                     timeout_graceful_shutdown=5))
        self._thread = threading.Thread(target=self._server.run,
                                        kwargs={"sockets": [self._sock]}, daemon=True)

    def start(self) -> Server:
        self._thread.start()

        def healthy() -> bool:
            if not self._thread.is_alive():
                pytest.fail("the server thread died while starting")
            try:
                return httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, what="/healthz")
        return self

    def client(self, key: str | None = "read", timeout: float = 120.0) -> httpx.Client:
        """An HTTP client with the read key, the write key, another key, or none (None)."""
        token = {"read": self.read_key, "write": self.write_key}.get(key or "", key)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def metrics(self) -> str:
        with self.client() as c:
            r = c.get("/metrics")
        assert r.status_code == 200, r.text
        return r.text

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(30)
        self._sock.close()


def done_event(events: list[tuple[str | None, str]]) -> dict[str, Any]:
    names = [name for name, _ in events]
    assert names.count("done") == 1 and names[-1] == "done", names
    return json.loads(events[-1][1])
