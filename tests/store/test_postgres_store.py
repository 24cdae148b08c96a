"""What only the PostgreSQL store has to show, against a real server (the shared behaviour is
the conformance suite's): the same BM25 and dense results as the local store, the HNSW path,
writers of several processes, a writer killed mid-transaction, and one-line connection errors.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest

from ragline.errors import RaglineError
from ragline.store import open_store
from ragline.store.base import ChunkRecord, DocumentRecord, IndexStore
from ragline.store.filters import parse_filter
from ragline.store.lexical import Bm25Settings
from ragline.store.local import LocalStore
from ragline.store.postgres import PostgresStore, filtered
from ragline.store.postgres.lexical import SHIFT, BlockChanges
from ragline.store.postgres.writer import HNSW_BUILD_MEMORY_CAP_KB, build_memory_kb
from ragline.testing.postgres import PostgresServer

DIM = 24
VOCAB = [f"{a}{b}" for a in ("river", "stone", "cloud", "ember", "frost", "grain", "lumen",
                             "marsh", "orbit", "pulse") for b in ("", "s", "ing", "ed", "er")]
QUERIES = ["river stones", "cloud ember frosting", "grain", "lumen marsh orbit pulse",
           "the river of stone and cloud", "embers frosted grains", "orbiting pulses",
           "marshes", "pulse river grain lumen cloud", "nothing matches zzz"]
TEAMS = ("legal", "hr", "eng")


def corpus(n_docs: int = 30, per_doc: int = 5, seed: int = 0
           ) -> list[tuple[DocumentRecord, list[ChunkRecord], np.ndarray]]:
    """Documents of Zipf-distributed words (so df and lengths vary), titles, headings, meta."""
    rng = np.random.default_rng(seed)
    weights = 1 / np.arange(1, len(VOCAB) + 1)
    weights /= weights.sum()
    out = []
    for d in range(n_docs):
        meta = {"team": TEAMS[d % 3], "year": 2010 + d % 7, "bucket": d % 10}
        chunks = []
        for j in range(per_doc):
            words = rng.choice(VOCAB, size=int(rng.integers(5, 60)), p=weights)
            text = " ".join(words)
            chunks.append(ChunkRecord(
                chunk_id=f"d{d}-{j}", source=f"doc{d}.md", ordinal=j, text=text,
                text_hash=f"h{d}-{j}", start=0, end=len(text), title=f"Doc {VOCAB[d]}",
                heading=VOCAB[(d + j) % len(VOCAB)] if j % 2 else None, meta=meta))
        vecs = rng.standard_normal((per_doc, DIM)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        out.append((DocumentRecord(f"/data/doc{d}.md", f"hash{d}", 100, 1.0, meta), chunks,
                    vecs))
    return out


def fill(store: IndexStore, docs: list[tuple[DocumentRecord, list[ChunkRecord], np.ndarray]]
         ) -> None:
    with store.write() as w:
        w.set_info(model="test-model", dim=docs[0][2].shape[1], pooling="mean")
        for doc, chunks, vecs in docs:
            w.add_chunks(w.put_document(doc), chunks, vecs)
        w.commit()


@pytest.fixture
def pair(postgres_url: str, tmp_path: Path) -> Iterator[tuple[LocalStore, PostgresStore]]:
    """A local and a PostgreSQL store filled alike (both number chunks 1, 2, ... in order)."""
    docs = corpus()
    local, pg = LocalStore(tmp_path / "local"), PostgresStore(postgres_url)
    fill(local, docs)
    fill(pg, docs)
    yield local, pg
    local.close()
    pg.close()


def same_run(got: tuple[np.ndarray, np.ndarray], want: tuple[np.ndarray, np.ndarray]) -> None:
    """Same chunks with the same scores (1e-4 relative), best first; two ids may trade places
    only where their scores are equal to float32 precision."""
    assert len(got[0]) == len(want[0])
    np.testing.assert_allclose(got[1], want[1], rtol=1e-4, atol=1e-6)
    for i, (x, y) in enumerate(zip(got[0].tolist(), want[0].tolist(), strict=True)):
        assert x == y or abs(float(got[1][i]) - float(want[1][i])) <= 1e-5 * abs(float(want[1][i]))


# same results as the local store --------------------------------------------------------------
@pytest.mark.parametrize("where", [None, 'team == "hr"', "year >= 2013 and bucket != 4"])
def test_bm25_scores_equal_the_local_stores(pair: tuple[LocalStore, PostgresStore],
                                            where: str | None) -> None:
    local, pg = pair
    f = parse_filter(where)
    with local.read() as lr, pg.read() as pr:
        assert pr.counts() == lr.counts() == (30, 150)
        for query in QUERIES:
            for k in (5, 1000):  # top few, and every chunk with a score
                want = lr.lexical_search(query, k, f)
                got = pr.lexical_search(query, k, f)
                same_run(got, want)
                if k == 1000 and query != "nothing matches zzz":
                    assert len(got[0]) > 0
        assert pr.lexical_search("nothing matches zzz", 5)[0].size == 0


def by_chunk(r: Any, run: tuple[np.ndarray, np.ndarray]) -> tuple[list[str], np.ndarray]:
    """A run with each id as its chunk's `chunk_id` (stores that number chunks apart)."""
    rows = r.chunks(run[0].tolist())
    return [rows[int(i)].chunk_id for i in run[0]], run[1]


def same_chunks(got: tuple[list[str], np.ndarray], want: tuple[list[str], np.ndarray]) -> None:
    """`same_run` on chunk_ids: equal scores; equal places unless the scores tie."""
    assert len(got[0]) == len(want[0])
    np.testing.assert_allclose(got[1], want[1], rtol=1e-4, atol=1e-6)
    for i, (x, y) in enumerate(zip(got[0], want[0], strict=True)):
        assert x == y or abs(float(got[1][i]) - float(want[1][i])) <= 1e-5 * abs(float(want[1][i]))


def jump_ids(url: str, to: int) -> None:
    """Make the PostgreSQL store's next chunk ids start at `to` (other posting blocks)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT setval('chunk_ids', %s)", (to,))


@pytest.mark.parametrize("surgery_max", [BlockChanges.SURGERY_MAX, 0])
def test_bm25_after_deletes_and_replaces_equals_the_local_stores(
        postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        surgery_max: int) -> None:
    """Replaced and deleted chunks leave the posting blocks (taken out of them, or, past
    SURGERY_MAX, their ranges made again), in old ranges and new ones, ids close together and
    far apart, also when a chunk is added and dropped in one transaction."""
    monkeypatch.setattr(BlockChanges, "SURGERY_MAX", surgery_max)
    docs, other = corpus(n_docs=30), corpus(n_docs=30, seed=7)
    local, pg = LocalStore(tmp_path / "local"), PostgresStore(postgres_url)
    fill(local, docs[:20])
    fill(pg, docs[:20])
    steps: list[tuple[int, list[int], list[int], list[int]]] = [
        ((3 << SHIFT) + 5, [3, 7], [5], list(range(20, 25))),  # a later block range
        (10_000_000, [3, 21], [8, 0], list(range(25, 30))),  # ids far apart
    ]
    for to, replace, delete, add in steps:
        jump_ids(postgres_url, to)
        for store in (local, pg):
            with store.write() as w:
                for d in replace:
                    doc, _, vecs = docs[d]
                    w.add_chunks(w.put_document(doc), other[d][1], vecs)
                for d in delete:
                    w.delete_document(w.document(docs[d][0].path).id)  # type: ignore[union-attr]
                for d in add:
                    w.add_chunks(w.put_document(docs[d][0]), docs[d][1], docs[d][2])
                doc, chunks, vecs = docs[add[0]]  # added, then replaced, in one transaction
                w.add_chunks(w.put_document(doc), other[add[0]][1][:2], vecs[:2])
                w.commit()
    with local.read() as lr, pg.read() as pr:
        assert pr.counts() == lr.counts() and pr.verify() == []
        for where in (None, 'team == "hr"', "year >= 2013 and bucket != 4"):
            f = parse_filter(where)
            for query in QUERIES:
                for k in (5, 1000):
                    want = by_chunk(lr, lr.lexical_search(query, k, f))
                    got = by_chunk(pr, pr.lexical_search(query, k, f))
                    same_chunks(got, want)
    local.close()
    pg.close()


def test_a_failed_replace_leaves_the_blocks_as_they_were(postgres_url: str,
                                                        tmp_path: Path) -> None:
    """put_document drops the old chunks, then fails: its savepoint puts them back, and the
    commit must not take their postings out of the blocks."""
    docs = corpus(n_docs=6)
    local, pg = LocalStore(tmp_path / "local"), PostgresStore(postgres_url)
    fill(local, docs)
    fill(pg, docs)
    with pg.write() as w:
        doc = docs[2][0]
        with pytest.raises(psycopg.DataError):  # NUL: refused after the old chunks went
            w.put_document(DocumentRecord(doc.path, "bad\x00hash", 1, 1.0, doc.meta))
        w.add_chunks(w.put_document(docs[4][0]), docs[4][1], docs[4][2])  # goes on working
        w.commit()
    with local.write() as w:
        w.add_chunks(w.put_document(docs[4][0]), docs[4][1], docs[4][2])
        w.commit()
    with local.read() as lr, pg.read() as pr:
        assert pr.verify() == [] and pr.counts() == lr.counts()
        for query in QUERIES:
            same_chunks(by_chunk(pr, pr.lexical_search(query, 100)),
                        by_chunk(lr, lr.lexical_search(query, 100)))
    local.close()
    pg.close()


def test_a_selective_filter_checks_more_batches(postgres_url: str, tmp_path: Path) -> None:
    """3000 chunks share a term and 6 pass the filter: the best 1024 hold too few of them,
    the next batch has the rest, and the result is still the local store's."""
    rng = np.random.default_rng(3)
    docs = []
    for d in range(60):
        meta = {"bucket": 7 if d == 41 else d % 5}
        chunks = [ChunkRecord(chunk_id=f"c{d}-{j}", source=f"d{d}", ordinal=j,
                              text="common " + " ".join(rng.choice(VOCAB, 8)),
                              text_hash=f"h{d}-{j}", start=0, end=1, meta=meta)
                  for j in range(50)]
        vecs = rng.standard_normal((50, DIM)).astype(np.float32)
        docs.append((DocumentRecord(f"/d{d}", "h", 1, 1.0, meta), chunks, vecs))
    local, pg = LocalStore(tmp_path / "local"), PostgresStore(postgres_url)
    fill(local, docs)
    fill(pg, docs)
    f = parse_filter("bucket == 7")
    with local.read() as lr, pg.read() as pr:
        for query, k in (("common", 6), ("common river", 6), ("common river", 80)):
            want = lr.lexical_search(query, k, f)
            assert len(want[0]) == min(k, 50)
            same_run(pr.lexical_search(query, k, f), want)
        same_run(pr.lexical_search("common", 3000), lr.lexical_search("common", 3000))
    local.close()
    pg.close()


def test_long_chunks_keep_exact_counts(postgres_url: str, tmp_path: Path) -> None:
    """A chunk of more than 32767 terms: its blocks hold four-byte tf and length values, also
    after the next commit appends short chunks' postings to them, and two-byte ones again
    once it is deleted."""
    docs = corpus(n_docs=6)
    long_text = " ".join(["river"] * 33000 + ["stone"] * 40 + ["cloud"])
    doc, chunks, vecs = docs[1]
    chunks[2] = ChunkRecord(chunk_id="long", source=doc.path, ordinal=2, text=long_text,
                            text_hash="long", start=0, end=len(long_text), meta=doc.meta)
    local, pg = LocalStore(tmp_path / "local"), PostgresStore(postgres_url)
    for store in (local, pg):
        fill(store, docs[:4])
        with store.write() as w:
            for doc, chunks, vecs in docs[4:]:
                w.add_chunks(w.put_document(doc), chunks, vecs)
            w.commit()
    with local.read() as lr, pg.read() as pr:
        assert pr.verify() == []
        for query in ("river", "stone cloud", "river grain"):
            same_run(pr.lexical_search(query, 50), lr.lexical_search(query, 50))
    for store in (local, pg):
        with store.write() as w:
            w.delete_document(w.document(docs[1][0].path).id)  # type: ignore[union-attr]
            w.commit()
    with local.read() as lr, pg.read() as pr:
        assert pr.verify() == []
        for query in ("river", "stone cloud", "river grain"):
            same_run(pr.lexical_search(query, 50), lr.lexical_search(query, 50))
    local.close()
    pg.close()


def test_a_version_1_store_gets_its_blocks_on_open(postgres_url: str) -> None:
    """Schema 1 had no posting blocks: opening one makes them from the postings rows."""
    docs = corpus(n_docs=8)
    store = PostgresStore(postgres_url)
    fill(store, docs)
    with store.read() as r:
        want = [r.lexical_search(q, 20) for q in QUERIES]
    store.close()
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("DROP TABLE lexical_blocks")
        conn.execute("COMMENT ON TABLE ragline_meta IS 'ragline schema 1'")
    store = PostgresStore(postgres_url)
    with store.read() as r:
        assert r.verify() == [] and r.stats()["schema"] == "2"
        for q, run in zip(QUERIES, want, strict=True):
            same_run(r.lexical_search(q, 20), run)
    store.close()


def test_dense_results_equal_the_local_stores(pair: tuple[LocalStore, PostgresStore]) -> None:
    local, pg = pair
    queries = np.random.default_rng(5).standard_normal((6, DIM)).astype(np.float32)
    with local.read() as lr, pg.read() as pr:
        assert pr.stats()["vector_index"] == "exact"
        for where in (None, 'team == "legal" and year < 2014'):
            f = parse_filter(where)
            for want, got in zip(lr.dense_search(queries, 12, f), pr.dense_search(queries, 12, f),
                                 strict=True):
                same_run(got, want)
        ids = pr.chunk_ids()
        np.testing.assert_allclose(pr.vectors(ids[:7].tolist()), lr.vectors(ids[:7].tolist()))


def test_other_bm25_text_settings_rebuild_the_postings(postgres_url: str,
                                                       tmp_path: Path) -> None:
    """Postings depend on title weight and stemmer; a writer with other ones rebuilds them."""
    docs = corpus(n_docs=12)
    first = PostgresStore(postgres_url)
    fill(first, docs)
    settings = Bm25Settings(title_weight=3, stemmer="")
    local = LocalStore(tmp_path / "local", lexical=settings)
    fill(local, docs)  # the same chunks under the same ids
    pg = PostgresStore(postgres_url, lexical=settings)
    with first.read() as before, pg.read() as r:  # until rebuilt, queries match the postings
        want = before.lexical_search("frosted embers", 20)
        assert want[0].size > 0
        same_run(r.lexical_search("frosted embers", 20), want)
    first.close()
    with pg.write() as w:
        w.commit()
    with local.read() as lr, pg.read() as pr:
        assert pr.info()["lexical"] == "title_weight=3 stemmer="
        assert pr.verify() == []
        for query in ("Doc rivers", "frosted ember", "grain"):
            same_run(pr.lexical_search(query, 50), lr.lexical_search(query, 50))
    local.close()
    pg.close()


def test_filtered_results_follow_commits_and_snapshots(postgres_url: str) -> None:
    """What a filter keeps is cached per commit: a snapshot taken before a commit goes on
    answering from before it, one taken after sees the chunks the commit changed."""
    docs = corpus(n_docs=6)  # teams legal, hr, eng, legal, hr, eng
    store = PostgresStore(postgres_url)
    fill(store, docs)
    f, other = parse_filter('team == "hr"'), parse_filter('team == "eng"')
    query = docs[0][2][:1]

    def kept(r: Any, team: str) -> set[int]:
        return {i for i, c in r.chunks(r.chunk_ids().tolist()).items() if c.meta["team"] == team}

    def check(r: Any, team: str, where: Any) -> None:
        want = kept(r, team)
        assert set(r.dense_search(query, 100, where)[0][0].tolist()) == want
        assert set(r.lexical_search("river stone cloud ember", 100, where)[0].tolist()) <= want
        assert r.lexical_search("river stone cloud ember", 100, where)[0].size > 0

    with store.read() as before:
        check(before, "hr", f)
        old_hr = kept(before, "hr")
        with store.write() as w:  # doc 1 leaves hr, doc 0 joins it
            for d, team in ((0, "hr"), (1, "legal")):
                doc, chunks, vecs = docs[d]
                meta = {**doc.meta, "team": team}
                w.add_chunks(w.put_document(DocumentRecord(doc.path, "new", 1, 1.0, meta)),
                             [ChunkRecord(**{**c.__dict__, "meta": meta}) for c in chunks],
                             vecs)
            w.commit()
        check(before, "hr", f)  # the cache of its commit
        check(before, "eng", other)  # first asked after the commit, still of its snapshot
        assert kept(before, "hr") == old_hr
    with store.read() as after:
        assert kept(after, "hr") != old_hr
        check(after, "hr", f)
        check(after, "eng", other)
    store.close()


# the HNSW path -----------------------------------------------------------------------------------
def clustered(n: int, seed: int = 0) -> np.ndarray:
    """Vectors near 40 centres: neighbours that an approximate index can find."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((40, DIM)).astype(np.float32)
    v = centres[rng.integers(0, 40, n)] + 0.4 * rng.standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.mark.parametrize("exact_max", [filtered.EXACT_MAX, 0])
def test_hnsw_is_built_past_the_threshold_and_finds_what_exact_finds(
        postgres_url: str, monkeypatch: pytest.MonkeyPatch, exact_max: int) -> None:
    """With a filter, exact over the kept rows; or (exact_max 0) HNSW's wider walk, then exact
    when the walk finds fewer than k."""
    monkeypatch.setattr(filtered, "EXACT_MAX", exact_max)
    store = PostgresStore(postgres_url + "?hnsw_threshold=500")
    vecs = clustered(2000)
    with store.write() as w:
        w.set_info(model="m", dim=DIM, pooling="mean")
        for d in range(20):  # bucket 0..99: `bucket == 7` keeps 1% of the chunks
            chunks = [ChunkRecord(chunk_id=f"c{d}-{j}", source=f"d{d}", ordinal=j, text="x",
                                  text_hash=f"h{d}-{j}", start=0, end=1,
                                  meta={"bucket": (d * 100 + j) % 100}) for j in range(100)]
            w.add_chunks(w.put_document(DocumentRecord(f"/d{d}", "h", 1, 1.0, {})), chunks,
                         vecs[d * 100:(d + 1) * 100])
            if d == 3:
                w.commit()  # 400 chunks: still exact
                assert w.info()["vector_index"] == "exact"
        w.commit()
        assert w.info()["vector_index"] == "hnsw (m=16, ef_construction=64)"
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT to_regclass('chunks_embedding_hnsw') IS NOT NULL"
                            ).fetchone() == (True,)
    queries = clustered(30, seed=9)
    bucket = np.array([(i % 100) for i in range(2000)])
    with store.read() as r:
        stats = r.stats()
        assert stats["vector_index"].startswith("hnsw") and stats["hnsw_threshold"] == 500
        ids = r.chunk_ids()  # in insertion order: row i of `vecs`
        recall = []
        for q, (got, scores) in zip(queries, r.dense_search(queries, 10), strict=True):
            exact = ids[np.argsort(-(vecs @ q), kind="stable")[:10]]
            recall.append(len(set(got.tolist()) & set(exact.tolist())) / 10)
            assert (np.diff(scores) <= 0).all()  # re-sorted exactly
            np.testing.assert_allclose(scores, vecs[np.searchsorted(ids, got)] @ q, atol=1e-5)
        assert np.mean(recall) >= 0.9
        f = parse_filter("bucket == 7")
        for q in queries[:10]:
            got, _ = r.dense_search(q, 10, f)[0]
            assert len(got) == 10 and set(bucket[np.searchsorted(ids, got)]) == {7}
            assert r.dense_search(q, 500, f)[0][0].size == 20  # every one there is
    store.close()


# writers of several processes -------------------------------------------------------------------
WRITER = r"""
import sys
import numpy as np
from ragline.store.base import ChunkRecord, DocumentRecord
from ragline.store.postgres import PostgresStore

url, name, mode = sys.argv[1:4]
store = PostgresStore(url)
def write(w, tag):
    doc = w.put_document(DocumentRecord(f"/{tag}", "h", 1, 1.0, {}))
    chunks = [ChunkRecord(chunk_id=f"{tag}-{j}", source=tag, ordinal=j, text=f"{tag} text",
                          text_hash=f"{tag}{j}", start=0, end=1) for j in range(3)]
    w.add_chunks(doc, chunks, np.ones((3, 4), np.float32))
print("started", flush=True)
with store.write() as w:
    w.set_info(model="m", dim=4, pooling="mean")
    write(w, name)
    seen = sorted(d.path for d in w.documents())
    print("written", *seen, flush=True)
    if mode == "hold":
        sys.stdin.readline()  # holds its transaction open until told to go on (or killed)
    if mode == "commit-then-hold":
        w.commit()
        write(w, name + "-uncommitted")
        print("uncommitted", flush=True)
        sys.stdin.readline()
    w.commit()
print("done", flush=True)
"""


def writer(url: str, name: str, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", WRITER, url, name, mode], text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)


def expect(proc: subprocess.Popen[str], word: str) -> list[str]:
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    assert line and line[0] == word, (word, line)
    return line[1:]


def waiting_for_lock(url: str) -> None:
    """Until some backend waits on an advisory lock (PostgreSQL's own condition wait)."""
    with psycopg.connect(url, autocommit=True) as conn:
        for _ in range(3000):
            if conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                            "AND NOT granted").fetchone() != (0,):
                return
            conn.execute("SELECT pg_sleep(0.01)")
    raise AssertionError("the second writer never waited for the lock")


def test_two_processes_writing_at_once_both_succeed(postgres_url: str) -> None:
    PostgresStore(postgres_url).close()  # schema made once, not raced by the two
    first = writer(postgres_url, "first", "hold")
    expect(first, "started")
    assert expect(first, "written") == ["/first"]  # holds the lock, uncommitted
    second = writer(postgres_url, "second", "plain")
    expect(second, "started")
    waiting_for_lock(postgres_url)  # the second one waits; it does not fail
    assert first.stdin is not None
    first.stdin.write("go\n")
    first.stdin.flush()
    expect(first, "done")
    # the second one's transaction began after the first commit, and sees it
    assert expect(second, "written") == ["/first", "/second"]
    expect(second, "done")
    assert first.wait(60) == 0 and second.wait(60) == 0
    with PostgresStore(postgres_url) as store, store.read() as r:
        assert r.counts() == (2, 6) and r.verify() == []


def test_a_killed_writer_leaves_the_last_commit(postgres_url: str) -> None:
    proc = writer(postgres_url, "kept", "commit-then-hold")
    expect(proc, "started")
    expect(proc, "written")
    expect(proc, "uncommitted")
    proc.kill()  # SIGKILL, mid-transaction
    assert proc.wait(60) == -9
    store = PostgresStore(postgres_url)
    try:
        with store.read() as r:
            assert [d.path for d in r.documents()] == ["/kept"]
            assert r.counts() == (1, 3) and r.verify() == []
            assert r.lexical_search("uncommitted", 5)[0].size == 0
        with store.write() as w:  # its lock went with its connection
            assert [d.path for d in w.documents()] == ["/kept"]
            w.delete_document(w.document("/kept").id)  # type: ignore[union-attr]
            w.commit()
        with store.read() as r:
            assert r.counts() == (0, 0) and r.verify() == []
    finally:
        store.close()


def test_abort_and_replace_keep_the_statistics_in_step(postgres_url: str) -> None:
    store = PostgresStore(postgres_url)
    docs = corpus(n_docs=6)
    fill(store, docs)
    with store.write() as w:
        doc, chunks, vecs = docs[2]
        w.add_chunks(w.put_document(doc), chunks[:2], vecs[:2])  # replaced: 5 chunks -> 2
        w.abort()
        assert sorted(w.vectors_for_hashes(["h2-1", "h2-4"])) == ["h2-1", "h2-4"]
        w.add_chunks(w.put_document(doc), chunks[:2], vecs[:2])
        w.commit()
        assert sorted(w.vectors_for_hashes(["h2-1", "h2-4"])) == ["h2-1"]
    with store.read() as r:
        assert r.counts() == (6, 27) and r.verify() == []
    store.close()


# bad input ------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_server_is_one_line_without_the_password() -> None:
    port = free_port()
    with pytest.raises(RaglineError) as err:
        open_store(f"postgresql://ragline:s3cret-pw@127.0.0.1:{port}/somedb")
    message = str(err.value)
    assert f"127.0.0.1:{port}/somedb" in message and "refused" in message.lower()
    assert "s3cret-pw" not in message and "\n" not in message


def test_wrong_password_is_one_line_without_the_password(postgres_server: PostgresServer
                                                         ) -> None:
    url = postgres_server.url_for(postgres_server.dbname, postgres_server.user,
                                  "not-the-password")
    with pytest.raises(RaglineError) as err:
        PostgresStore(url)
    message = str(err.value)
    assert "password authentication failed" in message
    assert f"127.0.0.1:{postgres_server.port}/{postgres_server.dbname}" in message
    assert "not-the-password" not in message and "\n" not in message
    store = PostgresStore(postgres_server.url)
    try:
        assert postgres_server.password not in store.location
        assert store.location.startswith(f"postgresql://{postgres_server.user}@127.0.0.1:")
    finally:
        store.close()


def test_the_hnsw_build_gets_memory_for_its_graph(postgres_url: str) -> None:
    """Past maintenance_work_mem an HNSW build goes on on disk, far slower: the writer asks
    for what the graph needs, never less than the server's own setting, and not without end."""
    with psycopg.connect(postgres_url) as conn:
        (server_kb,) = conn.execute("SELECT setting::bigint FROM pg_settings "
                                    "WHERE name = 'maintenance_work_mem'").fetchone()
        assert build_memory_kb(conn, 1_000, 384) == server_kb  # a small graph: as it is
        million = build_memory_kb(conn, 1_000_000, 384)
        assert 2 * 2**20 < million < 3 * 2**20  # ~2.7 GB for 1M x 384 (bench/scale.py)
        assert build_memory_kb(conn, 10**9, 384) == HNSW_BUILD_MEMORY_CAP_KB
