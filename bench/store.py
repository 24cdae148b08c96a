"""Local store against PostgreSQL + pgvector, in one run: ingest, quality, latency, filters.

    python bench/store.py                       # SciFact (../shared/data) + 100k synthetic
    python bench/store.py --synthetic 20000     # a smaller synthetic part
    python bench/store.py --pg-url postgresql://...   # an existing server instead of a new one

Part 1, full SciFact (5,183 abstracts) with a `bucket` field (0-9) on every document:
ingest into the local store with the real model (embedding included), then the same corpus
into each store with the vectors replayed from that run (what the store itself costs);
hybrid nDCG@10 on the test queries; search p50/p95 with no filter and with `bucket == 3`
(~10% of documents); filtered dense recall@10 against exact filtered search (numpy).
Part 2, N synthetic chunks (unit vectors around 2,000 centres, Zipf-vocabulary text, a
`bucket` field) written straight through each store's writer: dense, lexical and hybrid
p50/p95 (the store's part: query vectors precomputed), filtered and not, and filtered recall.
Each query takes its own snapshot, as `Index.search` does. Figures go to stdout as tables.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from ragline import Index  # noqa: E402
from ragline.embed import BatchEmbedder, create_embedder  # noqa: E402
from ragline.eval.beir import load_beir, run_queries, score_run  # noqa: E402
from ragline.retrieve.hybrid import DEFAULT_SETTINGS  # noqa: E402
from ragline.store import ChunkRecord, DocumentRecord, IndexStore, open_store  # noqa: E402
from ragline.store.filters import parse_filter  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "beir-scifact"
FILTER = parse_filter("bucket == 3")


class Replay(BatchEmbedder):
    """The real model the first time a text is seen; the recorded vector after that."""

    def __init__(self, real: Any) -> None:
        self.real, self.name, self.dim = real, real.name, real.dim
        self.pooling, self.tokenizer = real.pooling, real.tokenizer
        self.seen: dict[str, np.ndarray] = {}
        self.replay = False

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        if not self.replay:
            for t, v in zip(texts, self.real.embed(texts), strict=True):
                self.seen[t] = v
        return np.stack([self.seen[t] for t in texts])

    def embed_query(self, text: str) -> np.ndarray:
        return self.real.embed_query(text)

    def warmup(self) -> None:
        self.real.warmup()


def pct(times: Sequence[float]) -> str:
    ms = np.array(times) * 1e3
    return f"{np.percentile(ms, 50):.1f} / {np.percentile(ms, 95):.1f}"


def timed(calls: Sequence[Callable[[], object]]) -> list[float]:
    for call in calls[:3]:
        call()  # warm: first calls load files and plans
    out = []
    for call in calls:
        t0 = time.perf_counter()
        call()
        out.append(time.perf_counter() - t0)
    return out


def exact_filtered_recall(store: IndexStore, queries: np.ndarray, k: int = 10) -> float:
    """Filtered dense top-k against a numpy scan over the allowed chunks' vectors."""
    with store.read() as r:
        rows = r.chunks(r.chunk_ids().tolist())
        allowed = np.array(sorted(i for i, c in rows.items() if c.meta.get("bucket") == 3))
        vecs = r.vectors(allowed.tolist())
        found = r.dense_search(queries, k, FILTER)
    hits = 0
    for q, (ids, _) in zip(queries, found, strict=True):
        truth = set(allowed[np.argsort(-(vecs @ q), kind="stable")[:k]].tolist())
        hits += len(truth & set(ids.tolist()))
    return hits / (k * len(queries))


# part 1: SciFact ---------------------------------------------------------------------------
def bucketed_corpus(folder: Path, out: Path) -> int:
    lines = (folder / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
    with out.open("w", encoding="utf-8") as fh:
        for i, line in enumerate(lines):
            rec = json.loads(line)
            rec["metadata"] = {"bucket": i % 10}
            fh.write(json.dumps(rec) + "\n")
    return len(lines)


def recorded(emb: Replay, index: Path) -> dict[str, int]:
    """Take the vectors of an existing index of the same corpus instead of embedding; returns
    its chunk settings, which the stores built from them must use (same chunks, same texts)."""
    with Index(index, embedder=emb.real) as idx, idx.store.read() as reader:
        rows = reader.chunks(reader.chunk_ids().tolist())
        ids = sorted(rows)
        for c, v in zip((rows[i] for i in ids), reader.vectors(ids), strict=True):
            emb.seen[c.embed_text()] = v
        return {"chunk_tokens": idx.settings.chunk_tokens, "overlap": idx.settings.overlap}


def scifact(stores: dict[str, str], work: Path, queries_n: int,
            vectors_from: Path | None) -> list[str]:
    data = load_beir(DATA, "test")
    corpus = work / "corpus.jsonl"
    n_docs = bucketed_corpus(DATA, corpus)
    data.corpus = corpus
    emb = Replay(create_embedder())
    emb.warmup()
    embed_rate = None
    chunking: dict[str, int] = {}
    if vectors_from is not None:
        chunking = recorded(emb, vectors_from)
    else:
        t0 = time.perf_counter()
        with Index(work / "embed-run", embedder=emb) as idx:
            idx.add([corpus])
        embed_rate = n_docs / (time.perf_counter() - t0)
    emb.replay = True
    lines = ["| store | ingest docs/s (model incl.) | store write docs/s | hybrid nDCG@10 | "
             "p50/p95 ms | p50/p95 ms, 10% filter | filtered recall@10 |",
             "|---|---|---|---|---|---|---|"]
    texts = list(data.queries.values())[:queries_n]
    qv = emb.real.embed(texts)
    for name, location in stores.items():
        t0 = time.perf_counter()
        with Index(location, embedder=emb, **chunking) as idx:  # type: ignore[arg-type]
            report = idx.add([corpus])
            write_rate = n_docs / (time.perf_counter() - t0)
            assert not report.failed, report.failed
            run, _ = run_queries(idx, data, "hybrid", 100)
            ndcg = score_run(run, data.qrels)["ndcg@10"]
            plain = timed([lambda t=t: idx.search(t, k=10) for t in texts])
            filtered = timed([lambda t=t: idx.search(t, k=10, where=FILTER) for t in texts])
            recall = exact_filtered_recall(idx.store, qv)
        rate = "(same model)" if name != "local" or embed_rate is None else f"{embed_rate:.1f}"
        lines.append(f"| {name} | {rate} | {write_rate:.0f} | {ndcg:.4f} | {pct(plain)} | "
                     f"{pct(filtered)} | {recall:.3f} |")
        print(lines[-1], flush=True)
    return lines


# part 2: synthetic ------------------------------------------------------------------------
def synthetic(n: int, dim: int = 384, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((2000, dim)).astype(np.float32)
    vecs = centres[rng.integers(0, 2000, n)] + 0.6 * rng.standard_normal((n, dim),
                                                                         dtype=np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    vocab = [f"w{i}" for i in range(30000)]
    ranks = np.minimum(rng.zipf(1.2, size=(n, 60)) - 1, len(vocab) - 1)
    texts = [" ".join(vocab[r] for r in row) for row in ranks]
    return vecs, texts


def fill(store: IndexStore, vecs: np.ndarray, texts: list[str], per_doc: int = 50) -> float:
    t0 = time.perf_counter()
    with store.write() as w:
        w.set_info(model="synthetic", dim=vecs.shape[1], pooling="mean", chunk_tokens=256,
                   overlap=32)
        for d in range(0, len(texts), per_doc):
            meta = {"bucket": (d // per_doc) % 10}
            doc_id = w.put_document(DocumentRecord(f"/synthetic/{d}", "h", 1, 0.0, meta))
            chunks = [ChunkRecord(f"s{i}", f"/synthetic/{d}", i - d, texts[i], f"t{i}", 0,
                                  len(texts[i]), meta=meta)
                      for i in range(d, min(d + per_doc, len(texts)))]
            w.add_chunks(doc_id, chunks, vecs[d : d + len(chunks)])
            if d % 20000 == 0:
                w.commit()
        w.commit()
    return time.perf_counter() - t0


def search_once(store: IndexStore, qv: np.ndarray, text: str, where: Any) -> None:
    with store.read() as r:
        dense = r.dense_search(qv[None, :], 200, where)[0]
        lexical = r.lexical_search(text, 200, where)
        ids, _ = DEFAULT_SETTINGS.fuse(dense, lexical)
        r.chunks(ids[:10].tolist())


def scale(stores: dict[str, str], n: int, queries_n: int) -> list[str]:
    vecs, texts = synthetic(n)
    rng = np.random.default_rng(1)
    pick = rng.integers(0, n, queries_n)
    qv = vecs[pick] + 0.3 * rng.standard_normal((queries_n, vecs.shape[1]), dtype=np.float32)
    qv /= np.linalg.norm(qv, axis=1, keepdims=True)
    qt = [" ".join(texts[i].split()[:4]) for i in pick]
    lines = [f"| store ({n:,} chunks) | load s | dense p50/p95 | lexical p50/p95 | "
             "hybrid p50/p95 | hybrid 10% filter p50/p95 | filtered recall@10 | index |",
             "|---|---|---|---|---|---|---|---|"]
    for name, location in stores.items():
        store = open_store(location)
        try:
            cells = _measure(store, vecs, texts, qv, qt)
        finally:
            store.close()
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    return lines


def _measure(store: IndexStore, vecs: np.ndarray, texts: list[str], qv: np.ndarray,
             qt: list[str]) -> list[str]:
    load = fill(store, vecs, texts)
    pairs = list(zip(qv, qt, strict=True))
    d = timed([lambda q=q: _dense(store, q) for q in qv])
    lx = timed([lambda t=t: _lexical(store, t) for t in qt])
    h = timed([lambda q=q, t=t: search_once(store, q, t, None) for q, t in pairs])
    hf = timed([lambda q=q, t=t: search_once(store, q, t, FILTER) for q, t in pairs])
    recall = exact_filtered_recall(store, qv[:50])
    with store.read() as r:
        kind = r.stats().get("vector_index", "?")
    return [f"{load:.0f}", pct(d), pct(lx), pct(h), pct(hf), f"{recall:.3f}", str(kind)]


def _dense(store: IndexStore, q: np.ndarray) -> None:
    with store.read() as r:
        r.dense_search(q[None, :], 10)


def _lexical(store: IndexStore, text: str) -> None:
    with store.read() as r:
        r.lexical_search(text, 10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--synthetic", type=int, default=100_000, help="chunks in part 2 (0: skip)")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--no-scifact", action="store_true")
    ap.add_argument("--pg-url", help="an existing database (else a server is started here)")
    ap.add_argument("--vectors-from", type=Path, help="an index of the same corpus (default "
                    "chunking) whose vectors are replayed instead of embedding it again")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ragline-bench-store-"))
    server = None
    if args.pg_url is None:
        from ragline.testing.postgres import PostgresServer

        server = PostgresServer(work / "pg", settings={"shared_buffers": "1GB",
                                                       "maintenance_work_mem": "1GB",
                                                       "max_wal_size": "8GB"}).start()
    try:
        def pg(name: str) -> str:
            return args.pg_url or server.create_database(name)  # type: ignore[union-attr]

        print(f"2 cores; {time.strftime('%Y-%m-%d')}; work folder {work}", flush=True)
        if not args.no_scifact:
            if not DATA.is_dir():
                sys.exit(f"{DATA} is not here (use --no-scifact)")
            print("\nSciFact, full corpus:")
            scifact({"local": str(work / "scifact-local"), "postgresql": pg("scifact")},
                    work, args.queries, args.vectors_from)
        if args.synthetic:
            print(f"\nSynthetic, {args.synthetic:,} chunks:")
            scale({"local": str(work / "synthetic-local"), "postgresql": pg("synthetic")},
                  args.synthetic, args.queries)
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
