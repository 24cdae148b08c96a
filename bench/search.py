"""Search latency benchmark: query embedding and FAISS search, timed separately.

- Query embedding: the real default model, one query at a time (SciFact test claims when
  ../shared/data is here, else built-in questions), with 1 and 2 torch threads.
- FAISS search: ragline's `FaissVectors` (IndexIDMap2 over exact inner product) filled with
  random unit vectors at 5k and 100k chunks, k=10, with 1 and 2 OpenMP threads.
- `--index DIR`: also `Index.search` end to end on a real index (e.g. one kept by
  `bench/ingest.py --keep DIR`), dense and hybrid, with the timings it reports.

    .venv/bin/python bench/search.py [--queries 200] [--sizes 5000,100000] [--index DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as ragline sets it, before torch loads

REPO = Path(__file__).resolve().parents[1]
QUERIES = (REPO / ".." / "shared" / "data" / "beir-scifact" / "queries.jsonl").resolve()
FALLBACK = [
    "what is the definition of a cynic",
    "how hot should the water be for coffee",
    "which loaders does ragline support",
    "effects of vitamin D on bone density in older adults",
]


def pct(samples: list[float]) -> dict[str, float]:
    arr = np.asarray(samples) * 1e3
    return {"p50_ms": float(np.percentile(arr, 50)), "p95_ms": float(np.percentile(arr, 95)),
            "n": len(samples)}


def queries(n: int) -> list[str]:
    texts: list[str] = []
    if QUERIES.is_file():
        with QUERIES.open(encoding="utf-8") as fh:
            texts = [json.loads(line)["text"] for line in fh if line.strip()]
    texts = texts or FALLBACK
    return [texts[i % len(texts)] for i in range(n)]


def bench_embed(texts: list[str]) -> tuple[dict[str, Any], np.ndarray]:
    import torch

    from ragline.embed import create_embedder

    emb = create_embedder()
    emb.warmup()
    out: dict[str, Any] = {"dtype": getattr(emb, "dtype", "?")}
    vecs = np.zeros((len(texts), emb.dim), dtype=np.float32)
    default = torch.get_num_threads()
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for t in texts[:5]:
            emb.embed_query(t)
        times = []
        for i, t in enumerate(texts):
            t0 = time.perf_counter()
            vecs[i] = emb.embed_query(t)
            times.append(time.perf_counter() - t0)
        out[f"threads_{threads}"] = pct(times)
    torch.set_num_threads(default)
    return out, vecs


def bench_faiss(size: int, qv: np.ndarray, k: int) -> dict[str, Any]:
    import faiss

    from ragline.store.local.vectors import FaissVectors

    rng = np.random.default_rng(0)
    dim = qv.shape[1]
    store = FaissVectors(Path(tempfile.gettempdir()), dim)  # generation 0: memory only
    for start in range(0, size, 20_000):
        n = min(20_000, size - start)
        vecs = rng.standard_normal((n, dim), dtype=np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        store.add(np.arange(start, start + n, dtype=np.int64), vecs)
    out: dict[str, Any] = {"chunks": len(store)}
    default = faiss.omp_get_max_threads()
    # ragline's path (FaissVectors.search runs a single query on one thread), then the raw
    # FAISS index with 1 and 2 OpenMP threads to show why
    calls = {"ragline": store.search, "threads_1": store.index.search,
             "threads_2": store.index.search}
    for label, call in calls.items():
        faiss.omp_set_num_threads(2 if label == "threads_2" else default)
        if label == "threads_1":
            faiss.omp_set_num_threads(1)
        for q in qv[:5]:
            call(q[None, :], k)
        times = []
        for q in qv:
            t0 = time.perf_counter()
            call(q[None, :], k)
            times.append(time.perf_counter() - t0)
        out[label] = pct(times)
    faiss.omp_set_num_threads(default)
    return out


def bench_index(folder: Path, texts: list[str], k: int) -> dict[str, Any]:
    from ragline import Index

    out: dict[str, Any] = {}
    with Index(folder) as idx:
        out["chunks"] = idx.status()["chunks"]
        idx.search(texts[0], k=k, mode="dense")
        for mode in ("dense", "hybrid"):
            walls, timings = [], []
            for t in texts:
                t0 = time.perf_counter()
                res = idx.search(t, k=k, mode=mode)
                walls.append(time.perf_counter() - t0)
                timings.append(res.timings)
            out[mode] = {"total": pct(walls)}
            for key in timings[0]:
                out[mode][key.removesuffix("_ms")] = pct([t.get(key, 0) / 1e3 for t in timings])
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="ragline search latency")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--sizes", default="5000,100000")
    ap.add_argument("-k", type=int, default=10)
    ap.add_argument("--index", type=Path, default=None, help="a real index to search as well")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    texts = queries(args.queries)
    result: dict[str, Any] = {"load_avg": os.getloadavg(), "queries": len(texts)}
    print(f"embedding {len(texts)} queries one at a time", file=sys.stderr, flush=True)
    result["embed"], qv = bench_embed(texts)
    result["faiss"] = {}
    for size in (int(s) for s in args.sizes.split(",")):
        print(f"FAISS search at {size} chunks", file=sys.stderr, flush=True)
        result["faiss"][str(size)] = bench_faiss(size, qv, args.k)
    if args.index is not None:
        result["index"] = bench_index(args.index, texts, args.k)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    load = " ".join(f"{x:.1f}" for x in result["load_avg"])
    print(f"{len(texts)} single queries, k={args.k}, load average {load}")

    def line(label: str, d: dict[str, float]) -> None:
        print(f"  {label:34s} p50 {d['p50_ms']:7.2f} ms   p95 {d['p95_ms']:7.2f} ms")

    print(f"query embedding ({result['embed']['dtype']}):")
    for threads in (1, 2):
        line(f"{threads} torch thread(s)", result["embed"][f"threads_{threads}"])
    print("FAISS search (exact inner product, random unit vectors):")
    for size, d in result["faiss"].items():
        line(f"{int(size):>7,} chunks, FaissVectors.search", d["ragline"])
        for threads in (1, 2):
            line(f"{int(size):>7,} chunks, raw, {threads} OMP thread(s)", d[f"threads_{threads}"])
    if "index" in result:
        print(f"Index.search on {args.index} ({result['index']['chunks']} chunks):")
        for mode in ("dense", "hybrid"):
            for key, d in result["index"][mode].items():
                line(f"{mode} {key}", d)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
