"""`ragline serve` as a user runs it: a subprocess that loads the models, serves, and stops
cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from serve_helpers import read_events, wait_until

from ragline.serve.keys import KeyStore

pytestmark = pytest.mark.slow

OFF_TOPIC = "What is the capital of Peru?"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_ragline_serve(base_index: Path, tmp_path: Path, smollm2: Path) -> None:
    folder = tmp_path / "idx"
    shutil.copytree(base_index, folder)
    key = KeyStore(folder).create("read", "cli")[1]
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("RAGLINE_STORE", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ragline.cli.app", "serve", "--index", str(folder), "--port",
         str(port), "--model", "smollm2", "--threads", "2", "--max-tokens", "16", "-k", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        def healthy() -> bool:
            if proc.poll() is not None:
                pytest.fail(f"ragline serve exited with {proc.returncode}: "
                            f"{proc.stderr.read() if proc.stderr else ''}")
            try:
                return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, timeout=180, what="ragline serve to answer /healthz")
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"},
                          timeout=120) as c:
            assert c.post("/v1/search", json={"query": "bees"}).status_code == 200
            assert [m["id"] for m in c.get("/v1/models").json()["data"]][0] == "smollm2"
            # off topic: answered (abstained) without generating, which the other tests cover
            with c.stream("POST", "/v1/ask", json={"question": OFF_TOPIC}) as r:
                events = read_events(r)
            done = json.loads(events[-1][1])
            assert events[-1][0] == "done" and done["model"] == "smollm2"
            assert done["abstained"] is True
            assert len(done["retrieved"]) == 2  # -k 2 reached the server's asker
        assert httpx.post(f"{url}/v1/search", json={"query": "bees"}).status_code == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
    assert proc.returncode == 0, err
    assert f"at http://127.0.0.1:{port}/" in err and "smollm2" in err
