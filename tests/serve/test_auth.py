"""API keys on a real server (401, 403, scopes, revocation, --public-read) and `ragline keys`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from serve_helpers import COFFEE, Server, read_events

from ragline.serve.keys import KEYS_FILE, KeyStore, hash_key

SEARCH = {"query": "coffee"}


def post_file(c: Any) -> Any:
    return c.post("/v1/documents", files=[("files", ("k.txt", b"keys test"))])


def test_reads_need_a_key(server: Server) -> None:
    for key in (None, "rl_not-a-real-key"):
        with server.client(key) as c:
            for r in (c.post("/v1/search", json=SEARCH), c.get("/v1/documents"),
                      c.get("/v1/models"), c.get("/metrics"), c.get("/v1/jobs/x"),
                      c.post("/v1/ask", json={"question": COFFEE})):
                assert r.status_code == 401, (key, r.request.url, r.text)
                assert r.headers["www-authenticate"] == "Bearer"
                assert set(r.json()) == {"error"}
    with server.client(None) as c:
        wrong_scheme = c.get("/v1/documents", headers={"Authorization": f"Basic {server.read_key}"})
    assert wrong_scheme.status_code == 401


def test_open_endpoints_need_no_key(server: Server) -> None:
    with server.client(None) as c:
        assert c.get("/healthz").status_code == 200
        assert c.get("/").status_code == 200
        assert c.get("/static/app.js").status_code == 200


def test_read_key_reads_but_cannot_write(server: Server) -> None:
    with server.client("read") as c:
        assert c.post("/v1/search", json=SEARCH).status_code == 200
        upload = post_file(c)
        delete = c.delete("/v1/documents/1")
    for r in (upload, delete):
        assert r.status_code == 403, r.text
        assert "write" in r.json()["error"]
    with server.client("read") as c:  # nothing was deleted
        assert len(c.get("/v1/documents").json()["documents"]) == 4


def test_write_key_also_reads(server: Server) -> None:
    with server.client("write") as c:
        assert c.post("/v1/search", json=SEARCH).status_code == 200
        assert c.get("/v1/documents").status_code == 200
        r = post_file(c)
        assert r.status_code == 202
        assert c.get(f"/v1/jobs/{r.json()['job']}", params={"wait": 60}).json()["status"] == "done"


def test_a_revoked_key_is_refused_at_once(server: Server) -> None:
    info, key = server.keys.create("write", "short-lived")
    with server.client(key) as c:
        assert c.post("/v1/search", json=SEARCH).status_code == 200
        assert server.keys.revoke(info.id)
        r = c.post("/v1/search", json=SEARCH)
    assert r.status_code == 401 and "revoked" in r.json()["error"]


def test_keys_are_stored_hashed(server: Server) -> None:
    raw = (server.folder / KEYS_FILE).read_bytes()
    assert server.read_key.encode() not in raw and server.write_key.encode() not in raw
    assert hash_key(server.read_key).encode() in raw
    assert (server.folder / KEYS_FILE).stat().st_mode & 0o077 == 0
    assert server.read_key.startswith("rl_") and len(server.read_key) >= 40


def test_public_read(make_server: Any, llm: Any) -> None:
    public = make_server(llm, public_read=True)
    with public.client(None) as c:
        assert c.post("/v1/search", json=SEARCH).status_code == 200
        assert c.get("/v1/documents").status_code == 200
        with c.stream("POST", "/v1/ask", json={"question": "capital of Peru?"}) as r:
            assert r.status_code == 200
            assert read_events(r)[-1][0] == "done"
        write = post_file(c)
        delete = c.delete("/v1/documents/1")
    assert write.status_code == 401 and delete.status_code == 401
    with public.client("read") as c:
        assert post_file(c).status_code == 403


# the CLI -----------------------------------------------------------------------------------

def ragline(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("RAGLINE_INDEX", None)
    env.pop("RAGLINE_STORE", None)
    return subprocess.run([sys.executable, "-m", "ragline.cli.app", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


def test_keys_cli_create_list_revoke(tmp_path: Path) -> None:
    folder = tmp_path / "idx"
    made = ragline("keys", "create", "--scope", "read", "--name", "laptop", "--index", str(folder))
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("rl_") and "\n" not in key
    assert "not shown again" in made.stderr
    listed = ragline("keys", "list", "--json", "--index", str(folder))
    assert listed.returncode == 0, listed.stderr
    (entry,) = json.loads(listed.stdout)
    assert set(entry) == {"id", "name", "scope", "created"}
    assert entry["name"] == "laptop" and entry["scope"] == "read"
    assert key not in listed.stdout and hash_key(key) not in listed.stdout
    assert KeyStore(folder).verify(key).id == entry["id"]
    table = ragline("keys", "list", "--index", str(folder))
    assert entry["id"] in table.stdout and key not in table.stdout
    gone = ragline("keys", "revoke", entry["id"], "--index", str(folder))
    assert gone.returncode == 0, gone.stderr
    assert KeyStore(folder).verify(key) is None
    again = ragline("keys", "revoke", entry["id"], "--index", str(folder))
    assert again.returncode == 1
    assert again.stderr.strip().splitlines() == [f"error: no key with id {entry['id']!r}"]
    bad = ragline("keys", "create", "--scope", "admin", "--index", str(folder))
    assert bad.returncode == 1 and "read or write" in bad.stderr


def test_serving_beyond_loopback_without_keys_is_refused(tmp_path: Path) -> None:
    out = ragline("serve", "--host", "0.0.0.0", "--index", str(tmp_path / "idx"))
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("error: refusing to serve on 0.0.0.0 with no API keys")
    assert "ragline keys create" in lines[0]


@pytest.mark.parametrize("module", ["ragline.cli.app", "ragline.serve.keys"])
def test_the_cli_does_not_import_the_web_stack(module: str) -> None:
    code = (f"import sys, {module}\n"
            "print(sorted(m for m in ('fastapi', 'uvicorn', 'starlette', 'prometheus_client') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
