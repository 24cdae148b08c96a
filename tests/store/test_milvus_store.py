"""What only the Milvus store has to show, against a real Milvus standalone: filters compiled
to Milvus expressions select what `matches` selects (injection included), a writer killed at
each step of its commit leaves search and catalog agreeing, and bad situations are one line."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from ragline.errors import IndexMismatchError, RaglineError
from ragline.store import open_store
from ragline.store.base import ChunkRecord, DocumentRecord
from ragline.store.factory import resolve_location
from ragline.store.filters import Comparison, matches, parse_filter
from ragline.store.milvus import MilvusStore
from ragline.store.milvus.expr import string_literal
from ragline.testing.milvus import MilvusTestServer, free_ports
from ragline.testing.store import DIM, INFO, unit, write_doc

TRICKY = ['a"b', "o'k", '" or 1==1 or "', "back\\slash", "new\nline\ttab", "é😀",
          "x\" or id >= 0 or meta[\"t\"] == \"", "ctl\x01\x7f", ""]


def test_string_literals_escape_what_milvus_would_read() -> None:
    assert string_literal('a"b') == '"a\\"b"'
    assert string_literal("\\") == '"\\\\"'
    assert string_literal("l1\nl2\x01") == '"l1\\nl2\\x01"'
    assert string_literal("é") == '"é"'


@pytest.fixture
def store(milvus_server: MilvusTestServer, tmp_path: Path) -> MilvusStore:
    s = MilvusStore(milvus_server.url, tmp_path / "index")
    yield s
    s.close()


def test_filters_match_the_reference_including_injections(store: MilvusStore) -> None:
    with store.write() as w:
        w.set_info(**INFO)
        for i, tag in enumerate(TRICKY):
            meta = {"t": tag, "n": i - 3.5 if i % 2 else i, "b": i % 3 == 0}
            if i == 4:
                del meta["n"]
            w.register_fields(meta)
            doc = w.put_document(DocumentRecord(f"/d{i}", f"h{i}", 1, 1.0, meta))
            w.add_chunks(doc, [ChunkRecord(f"c{i}", f"d{i}", 0, f"text {i}", f"x{i}", 0, 1,
                                           meta=meta)], unit(1, i))
        w.commit()
    filters: list[object] = [Comparison("t", "==", t) for t in TRICKY] + [
        Comparison("t", "!=", TRICKY[2]), Comparison("t", "in", (TRICKY[0], TRICKY[5])),
        Comparison("t", "not in", (TRICKY[1], TRICKY[6])), 't not in ["o\'k"]',
        "n > 0", "n <= 1", "n in [0, 1.5, -0.5]", "not (n >= 0)", "b == true and n < 4",
        'b != true or t > "n"', "n not in []", "t in []"]
    with store.read() as r:
        rows = r.chunks(r.chunk_ids().tolist())
        for text in filters:
            f = parse_filter(text)  # type: ignore[arg-type]
            assert f is not None
            want = {i for i, c in rows.items() if matches(f, c.meta)}
            got, _ = r.dense_search(unit(1, 99), 100, f)[0]
            assert set(got.tolist()) == want, text
    # the injection attempts each matched their own chunk only
    assert all(len({i for i, c in rows.items() if c.meta["t"] == t}) == 1 for t in TRICKY)


def test_search_right_after_commits_keeps_recall_past_the_interim_index_threshold(
        store: MilvusStore) -> None:
    """6,400 random 384-d rows in four commits: one growing segment past ~5,000 rows is
    searched through Milvus's interim IVF index (nprobe 16 of 128; recall@10 ~0.3 on these
    rows), so the writer settles the collection once 4,096 rows wait unsealed. Right after
    the last commit, the dense top 10 is close to exact search's (HNSW at ef 256 finds ~0.96
    of it on random 384-d vectors, the hardest case for it), with exact's inner products."""
    dim, n, parts = 384, 6400, 4
    rng = np.random.default_rng(7)
    vecs = rng.standard_normal((n, dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    with store.write() as w:
        w.set_info(**{**INFO, "dim": dim})
        for p in range(parts):
            doc = w.put_document(DocumentRecord(f"/d{p}", f"h{p}", 1, 1.0, {}))
            rows = range(p * n // parts, (p + 1) * n // parts)
            w.add_chunks(doc, [ChunkRecord(f"c{i}", f"d{p}", i, f"t{i}", f"x{i}", 0, 1)
                               for i in rows], vecs[rows.start : rows.stop])
            w.commit()
    queries = rng.standard_normal((40, dim)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    with store.read() as r:
        ids = np.array(sorted(r.chunk_ids().tolist()))
        runs = r.dense_search(queries, 10)
    exact = queries @ vecs.T  # chunk ids follow insertion order
    hits = 0
    for q, (found, scores) in enumerate(runs):
        truth = set(ids[np.argsort(-exact[q])[:10]].tolist())
        hits += len(truth & set(found.tolist()))
        np.testing.assert_allclose(scores, exact[q][np.searchsorted(ids, found)], atol=1e-5)
    assert hits / (10 * len(queries)) >= 0.9


KILLED_WRITER = """
import os, sys
from ragline.store.milvus import MilvusStore
from ragline.store.milvus.collection import MilvusCollection
from ragline.testing.store import write_doc

def stop_here(name):
    real = getattr(MilvusCollection, name)
    def wrapper(self, *args, **kwargs):
        if os.environ.get("STOP_AFTER") == "insert" and name == "insert":
            real(self, *args, **kwargs)
        print("AT", name, flush=True)
        sys.stdin.read()  # block until killed
    setattr(MilvusCollection, name, wrapper)

stop_here(os.environ["STOP_AT"])
store = MilvusStore(sys.argv[1], sys.argv[2])
with store.write() as w:
    for i in range(50, 53):
        write_doc(w, i)
    w.delete_document(w.document("/data/doc001.md").id)
    w.commit()
"""


@pytest.mark.parametrize("stop_at,stop_after", [("insert", "insert"), ("delete_ids", "")])
def test_writer_killed_mid_commit_leaves_search_and_catalog_agreeing(
        milvus_server: MilvusTestServer, tmp_path: Path, stop_at: str, stop_after: str) -> None:
    """Killed after Milvus holds the new vectors but before the catalog commit, or after the
    catalog commit but before the deleted vectors left Milvus: searches return only catalog
    chunks, verify() is clean, and the next write collects what the killed one left."""
    folder = tmp_path / "index"
    with MilvusStore(milvus_server.url, folder) as store, store.write() as w:
        w.set_info(**INFO)
        for i in range(6):
            write_doc(w, i)
        w.commit()
    script = tmp_path / "writer.py"
    script.write_text(textwrap.dedent(KILLED_WRITER))
    env = {"PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src"),
           "STOP_AT": stop_at, "STOP_AFTER": stop_after, "PATH": "/usr/bin:/bin"}
    child = subprocess.Popen([sys.executable, str(script), milvus_server.url, str(folder)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == f"AT {stop_at}"  # the event, not a sleep
    finally:
        child.kill()
        child.wait()
    committed = stop_at == "delete_ids"  # the catalog commit happened before the purge
    with MilvusStore(milvus_server.url, folder) as store:
        with store.read() as r:
            assert r.counts() == ((8, 32) if committed else (6, 24))
            assert r.verify() == []
            catalog = set(r.chunk_ids().tolist())
            ids, _ = r.dense_search(unit(1, 0), 1000)[0]
            assert set(ids.tolist()) == catalog
            high = int(r.info()["next_id"])
        everything = set(store.collection.ids(10**6).tolist())
        assert everything - catalog  # the killed writer did leave something in Milvus
        with store.write() as w:  # the next write collects it
            write_doc(w, 60)
            w.commit()
        with store.read() as r:
            assert r.verify() == [] and r.stats()["pending_deletes"] == 0
            assert set(store.collection.ids(10**6).tolist()) == set(r.chunk_ids().tolist())
            assert min(set(r.chunk_ids().tolist()) - catalog) > high


def test_unreachable_milvus_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    port = free_ports(1)[0]
    with pytest.raises(RaglineError, match=f"cannot reach Milvus at 127.0.0.1:{port}") as e:
        MilvusStore(f"milvus://127.0.0.1:{port}", tmp_path / "index", timeout=2)
    assert "\n" not in str(e.value) and not (tmp_path / "index").exists()


def test_other_dimension_and_other_index_are_refused(milvus_server: MilvusTestServer,
                                                     tmp_path: Path) -> None:
    url = f"{milvus_server.url}/shared_{tmp_path.name[-8:].replace('-', '_')}"
    with MilvusStore(url, tmp_path / "a") as a, a.write() as w:
        w.set_info(**INFO)
        write_doc(w, 1)
        w.commit()
    with MilvusStore(url, tmp_path / "b") as b, b.write() as w:
        w.set_info(**{**INFO, "dim": DIM * 2})
        with pytest.raises(IndexMismatchError, match="dimension 16, the index 32"):
            w.put_document(DocumentRecord("/x", "h", 1, 1.0, {}))
            w.add_chunks(1, [], np.zeros((0, DIM * 2), np.float32))
    with MilvusStore(url, tmp_path / "c") as c, c.write() as w:
        w.set_info(**INFO)
        with pytest.raises(IndexMismatchError, match="belongs to another index"):
            write_doc(w, 2)
    with pytest.raises(RaglineError, match="keeps its vectors in Milvus collection"):
        MilvusStore(f"{milvus_server.url}/other", tmp_path / "a")


def test_dropped_collection_is_one_line(store: MilvusStore) -> None:
    with store.write() as w:
        w.set_info(**INFO)
        write_doc(w, 1)
        w.commit()
    store.collection.drop()
    with store.read() as r, pytest.raises(RaglineError, match="dropped"):
        r.dense_search(unit(1, 1), 3)
    with pytest.raises(RaglineError, match="dropped"), store.write():
        pass
    with store.read() as r:
        assert r.counts() == (1, 4)  # the catalog is as it was


def test_url_takes_the_index_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAGLINE_STORE", raising=False)
    where = resolve_location(tmp_path / "idx", "milvus://h:1")
    assert where == f"milvus://h:1?index={(tmp_path / 'idx').resolve()}"
    assert resolve_location(None, "milvus://h:1/c?index=/x") == "milvus://h:1/c?index=/x"
    with pytest.raises(RaglineError, match="collection name"):
        open_store("milvus://h:1/bad-name?index=/x")
    with pytest.raises(RaglineError, match="index folder"):
        MilvusStore("milvus://127.0.0.1:1")
