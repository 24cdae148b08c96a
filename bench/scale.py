"""ragline at scale: local exact, local ANN (IVF), PostgreSQL HNSW and Milvus HNSW in one run.

    python bench/scale.py                        # 1,000,000 chunks (long: see bench/README.md)
    python bench/scale.py --n 100000             # a smaller run
    python bench/scale.py --n 20000 --backends local-exact,milvus
    python bench/scale.py --n 0 --scifact-vectors-from /tmp/scifact-idx   # SciFact nDCG only

N synthetic 384-d unit vectors drawn around `--centres` centres (so nearest neighbours are
close but not trivially separated), queries drawn the same way (held out), a Zipf-vocabulary
text per chunk for BM25, and a `bucket` field (0-9) per document. Each backend is loaded
through the store protocol's writer (committing every `--commit-every` chunks), then: load
rate, index build time, dense and hybrid p50/p95 (the store's part: query vectors given)
with no filter and with `bucket == 3` (10%), recall@10 against exact search (numpy over the
same vectors, filtered the same way), the RSS the store adds (servers: their processes) and
its disk size. PostgreSQL and Milvus servers are started here from their PyPI wheels unless
URLs are given.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psutil

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from store import timed  # noqa: E402  (bench/store.py: warm, then one time per call)

from ragline.retrieve.hybrid import DEFAULT_SETTINGS  # noqa: E402
from ragline.store import ChunkRecord, DocumentRecord, IndexStore  # noqa: E402
from ragline.store.filters import parse_filter  # noqa: E402
from ragline.store.lexical import Bm25Settings  # noqa: E402

DIM = 384
FILTER = parse_filter("bucket == 3")
BACKENDS = ("local-exact", "local-ann", "postgresql", "milvus")


@dataclass
class Corpus:
    vectors: np.ndarray  # (n, DIM) float32, unit rows
    texts: list[str]
    buckets: np.ndarray  # per chunk
    queries: np.ndarray  # (q, DIM)
    query_texts: list[str]


def corpus(n: int, queries: int, centres: int = 4000, per_doc: int = 50, seed: int = 0
           ) -> Corpus:
    """Vectors around `centres` centres (noise ~ the centres' own spread), Zipf texts."""
    rng = np.random.default_rng(seed)
    cent = rng.standard_normal((centres, DIM)).astype(np.float32)

    def draw(m: int) -> np.ndarray:
        """Unit vectors around random centres: cosine ~0.86 to their centre, ~0.73 between
        two of one centre, ~0 across centres."""
        part = cent[rng.integers(0, centres, m)] + 0.6 * rng.standard_normal((m, DIM),
                                                                           np.float32)
        return part / np.linalg.norm(part, axis=1, keepdims=True)

    vecs = np.empty((n, DIM), dtype=np.float32)
    for s in range(0, n, 100_000):  # in slices: no second n x 384 temporary
        vecs[s : s + min(n - s, 100_000)] = draw(min(n - s, 100_000))
    vocab = np.array([f"w{i}" for i in range(30_000)])
    ranks = np.minimum(rng.zipf(1.2, size=(n, 40)) - 1, len(vocab) - 1)
    texts = [" ".join(row) for row in vocab[ranks].tolist()]
    pick = rng.integers(0, n, queries)  # query texts: words of a stored chunk
    buckets = (np.arange(n) // per_doc) % 10
    return Corpus(vecs, texts, buckets, draw(queries),  # held out, drawn like the corpus
                  [" ".join(texts[i].split()[:4]) for i in pick])


def fill(store: IndexStore, c: Corpus, commit_every: int, per_doc: int = 50) -> np.ndarray:
    """Write the corpus through the store's writer; returns the chunk id of every row."""
    ids = np.zeros(len(c.texts), dtype=np.int64)
    with store.write() as w:
        w.set_info(model="synthetic", dim=DIM, pooling="mean", chunk_tokens=256, overlap=32)
        for d in range(0, len(c.texts), per_doc):
            meta = {"bucket": int(c.buckets[d])}
            doc = w.put_document(DocumentRecord(f"/synthetic/{d}", "h", 1, 0.0, meta))
            rows = range(d, min(d + per_doc, len(c.texts)))
            chunks = [ChunkRecord(f"s{i}", f"/synthetic/{d}", i - d, c.texts[i], f"t{i}", 0,
                                  len(c.texts[i]), meta=meta) for i in rows]
            ids[d : rows.stop] = w.add_chunks(doc, chunks, c.vectors[d : rows.stop])
            if rows.stop % commit_every < per_doc:
                w.commit()
        w.commit()
    return ids


def exact_top(c: Corpus, ids: np.ndarray, k: int = 10, where: np.ndarray | None = None
              ) -> list[set[int]]:
    """The true top-k chunk ids per query (numpy, in slices of 200k rows)."""
    rows = np.arange(len(ids)) if where is None else np.flatnonzero(where)
    best = np.zeros((len(c.queries), 0), dtype=np.int64)
    best_s = np.zeros((len(c.queries), 0), dtype=np.float32)
    for s in range(0, len(rows), 200_000):
        part = rows[s : s + 200_000]
        scores = c.queries @ c.vectors[part].T
        top = np.argpartition(-scores, min(k, len(part) - 1), axis=1)[:, :k]
        best_s = np.concatenate([best_s, np.take_along_axis(scores, top, axis=1)], axis=1)
        best = np.concatenate([best, part[top]], axis=1)
        keep = np.argsort(-best_s, axis=1)[:, :k]
        best_s = np.take_along_axis(best_s, keep, axis=1)
        best = np.take_along_axis(best, keep, axis=1)
    return [set(ids[row].tolist()) for row in best]


def recall(found: Sequence[np.ndarray], truth: Sequence[set[int]]) -> float:
    return float(np.mean([len(set(f.tolist()) & t) / max(len(t), 1)
                          for f, t in zip(found, truth, strict=True)]))


def pct(times: Sequence[float]) -> str:
    ms = np.array(times) * 1e3
    return f"{np.percentile(ms, 50):.1f} / {np.percentile(ms, 95):.1f}"


def dense(store: IndexStore, q: np.ndarray, where: Any = None, k: int = 10) -> np.ndarray:
    with store.read() as r:
        return r.dense_search(q[None, :], k, where)[0][0]


def hybrid(store: IndexStore, q: np.ndarray, text: str, where: Any = None) -> None:
    with store.read() as r:
        ids, _ = DEFAULT_SETTINGS.fuse(r.dense_search(q[None, :], 200, where)[0],
                                       r.lexical_search(text, 200, where))
        r.chunks(ids[:10].tolist())


def measure(store: IndexStore, c: Corpus, commit_every: int,
            build: Callable[[IndexStore], tuple[float, IndexStore]],
            memory: Callable[[], int], disk: Callable[[], int]) -> dict[str, Any]:
    """One backend's row: everything the table prints, as values."""
    before = memory()
    t0 = time.perf_counter()
    ids = fill(store, c, commit_every)
    load = time.perf_counter() - t0
    build_s, store = build(store)
    qs = list(zip(c.queries, c.query_texts, strict=True))
    row: dict[str, Any] = {"load_per_s": len(ids) / load, "build_s": build_s}
    row["dense"] = timed([lambda q=q: dense(store, q) for q in c.queries])
    row["dense_f"] = timed([lambda q=q: dense(store, q, FILTER) for q in c.queries])
    row["hybrid"] = timed([lambda q=q, t=t: hybrid(store, q, t) for q, t in qs])
    row["hybrid_f"] = timed([lambda q=q, t=t: hybrid(store, q, t, FILTER) for q, t in qs])
    row["recall"] = recall([dense(store, q) for q in c.queries], exact_top(c, ids))
    row["recall_f"] = recall([dense(store, q, FILTER) for q in c.queries],
                             exact_top(c, ids, where=c.buckets == 3))
    row["rss_mb"] = (memory() - before) / 2**20
    row["disk_mb"] = disk() / 2**20
    with store.read() as r:
        row["index"] = str(r.stats().get("vector_index", "?"))
    return row


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def tree_rss(pid: int) -> int:
    """RSS of a server process and its children (PostgreSQL forks one per connection)."""
    proc = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)])


def own_rss() -> int:
    return psutil.Process().memory_info().rss


# backends ---------------------------------------------------------------------------------
@contextmanager
def local(work: Path, threshold: int | None) -> Iterator[tuple[IndexStore, dict[str, Any]]]:
    """Exact (threshold None) or IVF: loaded exact, then converted once at full size (the
    build the table times)."""
    from ragline.store.local import LocalStore

    folder = work / ("local-exact" if threshold is None else "local-ann")
    stores = [LocalStore(folder, Bm25Settings(), ann_threshold=10**12)]

    def build(s: IndexStore) -> tuple[float, IndexStore]:
        if threshold is None:
            return 0.0, s
        s.close()
        t0 = time.perf_counter()
        stores.append(LocalStore(folder, Bm25Settings(), ann_threshold=threshold))
        with stores[-1].write() as w:
            w.register_fields({"ann_built": True})  # a change, so that the commit runs
            w.commit()
        return time.perf_counter() - t0, stores[-1]

    try:
        yield stores[0], {"build": build, "memory": own_rss,
                          "disk": lambda: folder_bytes(folder)}
    finally:
        stores[-1].close()


@contextmanager
def postgres(work: Path, url: str | None) -> Iterator[tuple[IndexStore, dict[str, Any]]]:
    from ragline.store.postgres import PostgresStore
    from ragline.store.postgres.writer import DEFAULT_HNSW_THRESHOLD
    from ragline.testing.postgres import PostgresServer

    server = None
    if url is None:
        server = PostgresServer(work / "pg", settings={
            "shared_buffers": "1GB", "maintenance_work_mem": "1GB", "max_wal_size": "8GB"})
        url = server.start().create_database("scale")
    pid = server.postmaster_pid if server else 0
    # loaded exact, then HNSW built once at full size by the next commit (the build the table
    # times): inserting into a growing graph ran at ~480 vectors/s past 250k
    stores = [PostgresStore(url, hnsw_threshold=10**12)]

    def build(s: IndexStore) -> tuple[float, IndexStore]:
        s.close()
        t0 = time.perf_counter()
        stores.append(PostgresStore(url, hnsw_threshold=DEFAULT_HNSW_THRESHOLD))
        with stores[-1].write() as w:
            w.register_fields({"hnsw_built": True})  # a change, so that the commit runs
            w.commit()
        return time.perf_counter() - t0, stores[-1]

    try:
        yield stores[0], {"build": build,
                          "memory": (lambda: tree_rss(pid)) if pid else own_rss,
                          "disk": lambda: folder_bytes(server.data_dir) if server else 0}
    finally:
        stores[-1].close()
        if server is not None:
            server.stop()


@contextmanager
def milvus(work: Path, url: str | None) -> Iterator[tuple[IndexStore, dict[str, Any]]]:
    from ragline.store.milvus import MilvusStore
    from ragline.testing.milvus import MilvusTestServer

    server = MilvusTestServer(work / "milvus") if url is None else None
    if server is not None:
        url = server.start().url
    store = MilvusStore(str(url), work / "milvus-index")

    def build(s: IndexStore) -> tuple[float, IndexStore]:
        """Seal the segments and wait for their HNSW index (growing ones search exactly)."""
        from pymilvus import utility

        t0 = time.perf_counter()
        coll = store.collection
        handle = coll._handle()  # the bench looks under the store
        handle.flush()
        utility.wait_for_index_building_complete(coll.name, using=coll.alias)
        # reload: until then the sealed segments may still be searched through the growing
        # segments' interim IVF index (recall 0.4 on this data), not their HNSW index
        handle.release()
        handle.load()
        return time.perf_counter() - t0, s

    pid = server.pid if server is not None else None
    try:
        yield store, {"build": build,
                      "memory": (lambda: tree_rss(pid)) if pid else own_rss,
                      "disk": lambda: folder_bytes(work / "milvus")
                      + folder_bytes(work / "milvus-index")}
    finally:
        store.close()
        if server is not None:
            server.stop()


def open_backend(name: str, work: Path, args: argparse.Namespace) -> Any:
    if name == "local-exact":
        return local(work, None)
    if name == "local-ann":
        return local(work, args.ann_threshold)
    if name == "postgresql":
        return postgres(work, args.pg_url)
    if name == "milvus":
        return milvus(work, args.milvus_url)
    raise SystemExit(f"unknown backend {name!r}; use {', '.join(BACKENDS)}")


def scifact(work: Path, args: argparse.Namespace) -> None:
    """Hybrid nDCG@10 on SciFact per backend, through `Index` (bench/store.py's part 1, with
    the vectors replayed from `--scifact-vectors-from`); local-ann forces the IVF index."""
    import store as store_bench  # bench/store.py

    from ragline.testing.milvus import MilvusTestServer

    wanted = "milvus" in args.backends.split(",") and args.milvus_url is None
    server = MilvusTestServer(work / "scifact-milvus") if wanted else None
    url = server.start().url if server is not None else args.milvus_url
    print("| backend | ingest docs/s (model incl.) | store write docs/s | hybrid nDCG@10 | "
          "p50/p95 ms | p50/p95 ms, 10% filter | filtered recall@10 |\n"
          "|---|---|---|---|---|---|---|", flush=True)
    try:
        for name, location, ann in (
                ("local-exact", str(work / "sf-local"), None),
                ("local-ann", str(work / "sf-ann"), "1000"),
                ("milvus", f"{url}?index={work / 'sf-milvus'}", None)):
            if name not in args.backends.split(","):
                continue
            if ann is not None:
                os.environ["RAGLINE_ANN_THRESHOLD"] = ann
            try:
                store_bench.scifact({name: location}, work, args.queries,
                                    args.scifact_vectors_from)
            finally:
                os.environ.pop("RAGLINE_ANN_THRESHOLD", None)
    finally:
        if server is not None:
            server.stop()


def table_row(name: str, row: dict[str, Any]) -> str:
    return (f"| {name} | {row['load_per_s']:,.0f} | {row['build_s']:.1f} | {pct(row['dense'])} "
            f"| {pct(row['dense_f'])} | {pct(row['hybrid'])} | {pct(row['hybrid_f'])} | "
            f"{row['recall']:.3f} | {row['recall_f']:.3f} | {row['rss_mb']:,.0f} | "
            f"{row['disk_mb']:,.0f} | {row['index']} |")


HEADER = ("| backend | load vectors/s | index build s | dense p50/p95 ms | dense 10% filter | "
          "hybrid p50/p95 ms | hybrid 10% filter | recall@10 | filtered recall@10 | "
          "RSS MB | disk MB | index |\n|---|---|---|---|---|---|---|---|---|---|---|---|")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="chunks (default 1,000,000)")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--centres", type=int, default=4000)
    ap.add_argument("--commit-every", type=int, default=100_000)
    ap.add_argument("--backends", default=",".join(BACKENDS))
    ap.add_argument("--ann-threshold", type=int, default=50_000,
                    help="local-ann: convert to IVF past this many vectors")
    ap.add_argument("--pg-url", help="an existing database (else a server is started here)")
    ap.add_argument("--milvus-url", help="an existing Milvus (else one is started here)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--scifact-vectors-from", type=Path, help="also SciFact hybrid nDCG@10 "
                    "per backend, replaying this SciFact index's vectors (bench/store.py)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ragline-bench-scale-"))
    try:
        if args.scifact_vectors_from is not None:
            scifact(work, args)
        if not args.n:
            return
        t0 = time.perf_counter()
        c = corpus(args.n, args.queries, args.centres)
        print(f"{os.cpu_count()} cores; {args.n:,} chunks x {DIM}; {args.centres} centres; "
              f"corpus made in {time.perf_counter() - t0:.0f} s; work folder {work}", flush=True)
        print(HEADER, flush=True)
        for name in args.backends.split(","):
            with open_backend(name, work, args) as (store, probes):
                print(table_row(name, measure(store, c, args.commit_every, **probes)),
                      flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
