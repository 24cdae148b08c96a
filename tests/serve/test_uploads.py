"""Uploads on a real server: job, progress, searchable, delete; and every refusal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from serve_helpers import Server

ZORBLAX = b"""# The zorblax

The zorblax is a small purple bird of the Quillan marshes that sings only at dawn.
"""
ASHWICK = b"The Ashwick ferry crosses the estuary every forty minutes from April to October.\n"


@pytest.fixture(scope="module")
def server(make_server: Any, llm: Any) -> Server:
    return make_server(llm, max_upload_mb=1)


def upload(server: Server, files: list[tuple[str, bytes]], meta: list[str] = (),
           key: str | None = "write") -> Any:
    with server.client(key) as c:
        return c.post("/v1/documents", files=[("files", (n, b)) for n, b in files],
                      data={"meta": list(meta)} if meta else None)


def finished(server: Server, job: str) -> dict[str, Any]:
    with server.client() as c:
        r = c.get(f"/v1/jobs/{job}", params={"wait": 60})
    assert r.status_code == 200, r.text
    assert r.json()["status"] in ("done", "failed"), r.json()
    return r.json()


def search(server: Server, query: str, **kw: Any) -> list[dict[str, Any]]:
    with server.client() as c:
        r = c.post("/v1/search", json={"query": query, "mode": "lexical", **kw})
    assert r.status_code == 200, r.text
    return r.json()["results"]


def tree(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")}


def test_upload_is_ingested_by_a_job_and_searchable(server: Server) -> None:
    assert not search(server, "zorblax")
    r = upload(server, [("zorblax.md", ZORBLAX), ("ferry.txt", ASHWICK)],
               meta=["team=birds", "year=2024"])
    assert r.status_code == 202, r.text
    body = r.json()
    assert set(body) == {"job", "files"} and body["files"] == ["zorblax.md", "ferry.txt"]
    job = finished(server, body["job"])
    assert job == {"id": body["job"], "status": "done", "files": 2, "done": 2, "added": 2,
                   "updated": 0, "unchanged": 0, "failed": [], "chunks_embedded": 2,
                   "error": None}
    hits = search(server, "zorblax")
    assert hits and hits[0]["source"] == str(
        (server.folder / "uploads" / body["job"] / "zorblax.md").resolve())
    assert hits[0]["metadata"]["team"] == "birds" and hits[0]["metadata"]["year"] == 2024
    assert search(server, "ferry", where='team == "birds" and year >= 2020')
    with server.client() as c:
        docs = c.get("/v1/documents").json()["documents"]
    names = {d["name"]: d for d in docs}
    assert names["zorblax.md"]["chunks"] == 1 and names["zorblax.md"]["meta"]["team"] == "birds"

    # delete it: 204, gone from search and list, its uploaded copy removed; again: 404
    doc = names["zorblax.md"]
    with server.client("write") as c:
        assert c.delete(f"/v1/documents/{doc['id']}").status_code == 204
        again = c.delete(f"/v1/documents/{doc['id']}")
    assert again.status_code == 404 and set(again.json()) == {"error"}
    assert not search(server, "zorblax")
    assert not Path(doc["path"]).exists()
    with server.client() as c:
        assert c.get(f"/v1/chunks/{hits[0]['chunk_id']}").status_code == 404
        assert "zorblax.md" not in {d["name"] for d in c.get("/v1/documents").json()["documents"]}


def test_corrupt_pdf_is_reported_and_the_rest_indexed(server: Server) -> None:
    r = upload(server, [("broken.pdf", b"%PDF-1.4\nthis is not really a PDF"),
                        ("heron.txt", b"The grey heron of Lake Vimmersby hunts at dusk.\n")])
    assert r.status_code == 202, r.text
    job = finished(server, r.json()["job"])
    assert job["status"] == "done" and job["added"] == 1 and job["done"] == 2
    assert [name for name, _ in job["failed"]] == ["broken.pdf"]
    assert "PDF" in job["failed"][0][1]
    assert search(server, "Vimmersby")
    assert not (server.folder / "uploads" / r.json()["job"] / "broken.pdf").exists()


def test_searches_are_not_blocked_by_an_ingest_and_see_committed_state(server: Server) -> None:
    """While a job waits for the store's writer, searches answer, without the new file."""
    with server.state.write_lock:  # as if a long ingest were writing
        r = upload(server, [("quokka.md", b"The quokka of Rottnest Island smiles.\n")])
        assert r.status_code == 202
        assert search(server, "quokka") == []
        with server.client() as c:
            assert c.get(f"/v1/jobs/{r.json()['job']}").json()["status"] in ("queued",
                                                                               "running")
    assert finished(server, r.json()["job"])["added"] == 1
    assert search(server, "quokka")


def test_too_large_is_413_and_nothing_is_written(server: Server) -> None:
    before = tree(server.folder)
    r = upload(server, [("big.txt", b"word " * 300_000)])  # 1.5 MB over a 1 MB limit
    assert r.status_code == 413, r.text
    assert "1 MB" in r.json()["error"]
    assert tree(server.folder) == before


@pytest.mark.parametrize("name", ["../x.txt", "..\\x.txt", "a/b.txt", "/tmp/abs.txt",
                                  ".hidden.md", "..", "notes..txt", "sub\\x.txt"])
def test_unsafe_names_are_400_and_never_written(server: Server, name: str) -> None:
    # ("C:\\x.txt" never arrives as such: the multipart parser keeps "x.txt" of such names,
    # as old browsers sent whole Windows paths)
    before = tree(server.folder)
    outside = set(server.folder.parent.iterdir())
    r = upload(server, [("ok.txt", b"fine"), (name, b"escape attempt")])
    assert r.status_code == 400, (name, r.text)
    assert set(r.json()) == {"error"}
    assert tree(server.folder) == before
    assert set(server.folder.parent.iterdir()) == outside
    assert not Path("/tmp/abs.txt").exists()


def test_unsupported_type_is_415(server: Server) -> None:
    before = tree(server.folder)
    r = upload(server, [("data.xyz", b"???")])
    assert r.status_code == 415
    assert ".xyz" in r.json()["error"]
    assert tree(server.folder) == before


def test_malformed_uploads_are_422(server: Server) -> None:
    with server.client("write") as c:
        none = c.post("/v1/documents", data={"meta": "a=1"})
        text_field = c.post("/v1/documents", data={"files": "not a file"})
    bad_meta = upload(server, [("a.txt", b"a")], meta=["no-equals-sign"])
    builtin = upload(server, [("a.txt", b"a")], meta=["source=x"])
    for r, field in ((none, "files"), (text_field, "files"), (bad_meta, "meta"),
                     (builtin, "meta")):
        assert r.status_code == 422, r.text
        assert r.json()["error"].startswith(f"{field}: ")


def test_unknown_job_and_document_are_404(server: Server) -> None:
    with server.client("write") as c:
        job = c.get("/v1/jobs/0000000000000000")
        doc = c.delete("/v1/documents/999999")
        not_int = c.delete("/v1/documents/abc")
    assert job.status_code == 404 and set(job.json()) == {"error"}
    assert doc.status_code == 404 and "999999" in doc.json()["error"]
    assert not_int.status_code == 422 and not_int.json()["error"].startswith("doc_id: ")
