"""`--meta`, `--where`, `status` fields and `migrate`, through the real command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_cli_commands import run

from ragline import Index


@pytest.fixture(scope="module")
def docs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("store-cli")
    (root / "legal").mkdir()
    (root / "legal" / "nda.md").write_text(
        "---\nyear: 2024\n---\n# NDA\n\nThe parties keep the kettle recipe confidential.\n")
    (root / "notes.txt").write_text("The kettle whistles when the water boils.\n")
    return root


@pytest.fixture(scope="module")
def index(docs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    idx = tmp_path_factory.mktemp("store-cli-idx") / "idx"
    r = run("ingest", docs / "legal", "--index", idx, "--meta", "team=legal",
            "--meta", "draft=false", "-q")
    assert r.returncode == 0, r.stderr
    r = run("ingest", docs / "notes.txt", "--index", idx, "--meta", "team=ops", "-q")
    assert r.returncode == 0, r.stderr
    return idx


def search(index: Path, *args: str) -> list[dict[str, object]]:
    r = run("search", "kettle", "--json", "--index", index, *args)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["results"]


def test_where_returns_only_matching_chunks(index: Path, docs: Path) -> None:
    assert {Path(str(h["source"])).name for h in search(index)} == {"nda.md", "notes.txt"}
    legal = search(index, "--where", 'team == "legal"')
    assert [h["source"] for h in legal] == [str(docs / "legal" / "nda.md")]
    meta = legal[0]["metadata"]
    assert meta == {**meta, "team": "legal", "draft": False, "year": 2024, "type": "md"}
    for mode in ("dense", "lexical", "hybrid"):
        hits = search(index, "--mode", mode, "-w", 'type == "txt" and team != "legal"')
        assert [Path(str(h["source"])).name for h in hits] == ["notes.txt"], mode


def test_status_lists_the_fields(index: Path) -> None:
    info = json.loads(run("status", "--json", "--index", index).stdout)
    assert info["fields"]["team"] == "string" and info["fields"]["draft"] == "boolean"
    assert info["fields"]["year"] == "number" and info["documents"] == 2
    text = " ".join(run("status", "--index", index).stdout.split())
    assert "team (string)" in text and "year (number)" in text
    checked = run("status", "--check", "--index", index)
    assert checked.returncode == 0 and "ok: catalog, vectors and postings agree" in " ".join(
        checked.stdout.split())


def test_bad_meta_and_bad_where_are_clear(index: Path, docs: Path) -> None:
    r = run("ingest", docs / "notes.txt", "--index", index, "--meta", "team")
    assert r.returncode != 0 and "Traceback" not in r.stderr and "'team'" in r.stderr
    r = run("ingest", docs / "notes.txt", "--index", index, "--meta", "title=x")
    assert r.returncode != 0 and "built-in" in r.stderr
    r = run("search", "kettle", "--index", index, "--where", "team == ")
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "position" in r.stderr
    r = run("search", "kettle", "--index", index, "--where", 'tema == "x"')
    assert r.returncode != 0 and "unknown field 'tema'" in r.stderr and "team" in r.stderr
    r = run("ingest", docs / "notes.txt", "--index", index, "--meta", "year=soon", "-q")
    assert "failed" in r.stderr and "'year'" in r.stderr and "number" in r.stderr


def test_migrate_folder_to_folder_gives_identical_results(index: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    r = run("migrate", index, copy)
    assert r.returncode == 0, r.stderr
    assert "copied 2 documents" in r.stdout
    for args in ([], ["--mode", "lexical"], ["--where", 'team == "ops"']):
        assert search(copy, *args) == search(index, *args)
    with Index(copy) as idx:
        assert idx.status()["fields"] == json.loads(
            run("status", "--json", "--index", index).stdout)["fields"]
    again = run("migrate", index, copy)
    assert again.returncode != 0 and "already holds documents" in again.stderr


def test_postgres_store_end_to_end(docs: Path, index: Path, postgres_url: str,
                                   postgres_server, tmp_path: Path, embedder) -> None:
    """ingest --store URL --meta, search --where --store, status, and migrate both ways."""
    r = run("ingest", docs / "legal", "--store", postgres_url, "--meta", "team=x", "-q")
    assert r.returncode == 0, r.stderr
    r = run("ingest", docs / "notes.txt", "--store", postgres_url, "-q",
            env={"RAGLINE_STORE": postgres_url})
    assert r.returncode == 0, r.stderr
    hits = search(index, "--store", postgres_url, "--where", 'team == "x"')
    assert [Path(str(h["source"])).name for h in hits] == ["nda.md"]
    assert hits[0]["metadata"]["team"] == "x"
    info = json.loads(run("status", "--json", "--store", postgres_url).stdout)
    assert info["documents"] == 2 and info["fields"]["team"] == "string"
    assert postgres_server.password not in info["index"]

    # folder -> database -> folder: identical results, nothing embedded again
    target = postgres_server.create_database("migrated")
    r = run("migrate", index, target)
    assert r.returncode == 0, r.stderr
    back = tmp_path / "back"
    assert run("migrate", target, back).returncode == 0
    searches = [{}, {"mode": "lexical"}, {"mode": "dense"}, {"where": 'team == "ops"'}]
    with Index(index, embedder=embedder) as a, Index(back, embedder=embedder) as b, \
            Index(target, embedder=embedder) as c:
        for kwargs in searches:
            want = [(h.chunk_id, round(h.score, 4), h.metadata) for h in
                    a.search("kettle boils", k=5, **kwargs).hits]
            assert want
            for other in (b, c):
                got = [(h.chunk_id, round(h.score, 4), h.metadata) for h in
                       other.search("kettle boils", k=5, **kwargs).hits]
                assert got == want, (other.location, kwargs)
    postgres_server.drop_database("migrated")


def test_unreachable_database_is_one_line(postgres_server, tmp_path: Path) -> None:
    bad = postgres_server.url_for(postgres_server.dbname, postgres_server.user,
                                  "not-the-password")
    r = run("search", "kettle", "--store", bad)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert "not-the-password" not in r.stderr and "password" in r.stderr.lower()


def test_milvus_store_end_to_end(docs: Path, index: Path, milvus_server, smollm2: Path,
                                 tmp_path: Path) -> None:
    """ingest --store milvus:// --index DIR, search --where, status --check, ask --where: the
    same hits as the local index, the catalog in the folder, the vectors in Milvus."""
    folder = tmp_path / "milvus-idx"
    for part, team in ((docs / "legal", "legal"), (docs / "notes.txt", "ops")):
        r = run("ingest", part, "--index", folder, "--store", milvus_server.url, "--meta",
                f"team={team}", "-q")
        assert r.returncode == 0, r.stderr
    assert (folder / "catalog.sqlite").is_file()
    for args in ([], ["--mode", "dense"], ["--where", 'team == "ops"']):
        got = search(folder, "--store", milvus_server.url, *args)
        want = search(index, *args)
        assert [(h["chunk_id"], round(float(h["score"]), 4)) for h in got] == \
            [(h["chunk_id"], round(float(h["score"]), 4)) for h in want], args
    checked = run("status", "--check", "--index", folder, "--store", milvus_server.url)
    assert checked.returncode == 0, checked.stdout
    text = " ".join(checked.stdout.split())
    assert "HNSW" in text and "ok: catalog, vectors and postings agree" in text
    asked = run("ask", "When does the kettle whistle?", "--json", "--index", folder, "--store",
                milvus_server.url, "--where", 'team == "ops"', "--model", "smollm2",
                "--threads", "1", "--max-tokens", "12", "--min-confidence", "0")
    assert asked.returncode == 0, asked.stderr
    answer = json.loads(asked.stdout)
    assert not answer["abstained"] and answer["mode"] == "extractive", answer
    [cited] = answer["citations"]
    assert cited["source"].endswith("notes.txt") and answer["span"] in cited["text"]
    assert all(h["source"].endswith("notes.txt") for h in answer["retrieved"])


def test_unreachable_milvus_is_one_line(index: Path) -> None:
    from ragline.testing.milvus import free_ports

    r = run("search", "kettle", "--index", index, "--store",
            f"milvus://127.0.0.1:{free_ports(1)[0]}")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "cannot reach Milvus" in r.stderr
