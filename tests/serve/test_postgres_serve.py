"""The server over an index in PostgreSQL: keys and uploads still live in the index folder."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from serve_helpers import EXAMPLE, Server

pytestmark = pytest.mark.slow


def test_serving_a_postgres_store(postgres_url: str, embedder: Any, llm: Any,
                                  tmp_path: Path) -> None:
    from ragline.index import Index
    from ragline.serve.app import create_app
    from ragline.serve.state import ServeSettings

    corpus = tmp_path / "corpus"
    shutil.copytree(EXAMPLE, corpus)
    folder = tmp_path / "folder"  # holds keys.sqlite and uploads/, not the index
    idx = Index(postgres_url, embedder=embedder)
    assert idx.add([corpus]).added == 4
    server = Server(create_app(idx, llm, ServeSettings(folder=folder)), idx, folder).start()
    try:
        with server.client("write") as c:
            hits = c.post("/v1/search", json={"query": "waggle dance", "k": 1}).json()["results"]
            assert hits[0]["source"].endswith("honeybees.html")
            chunk = c.get(f"/v1/chunks/{hits[0]['chunk_id']}").json()
            assert chunk["text"] == hits[0]["text"]
            r = c.post("/v1/documents", files=[("files", ("owl.txt", b"The snowy owl of "
                                                          b"Brackenfell nests on the tundra."))])
            assert r.status_code == 202
            job = c.get(f"/v1/jobs/{r.json()['job']}", params={"wait": 60}).json()
            assert job["status"] == "done" and job["added"] == 1, job
            found = c.post("/v1/search", json={"query": "Brackenfell", "mode": "lexical"})
            doc = next(d for d in c.get("/v1/documents").json()["documents"]
                       if d["name"] == "owl.txt")
            assert c.delete(f"/v1/documents/{doc['id']}").status_code == 204
            gone = c.post("/v1/search", json={"query": "Brackenfell", "mode": "lexical"})
        assert found.json()["results"][0]["source"].startswith(str((folder / "uploads")
                                                                    .resolve()))
        assert gone.json()["results"] == []
        assert (folder / "keys.sqlite").is_file()
        assert not (folder / "catalog.sqlite").exists()
    finally:
        server.stop()
        idx.close()
