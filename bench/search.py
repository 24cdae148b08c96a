"""Search latency benchmark: query embedding and FAISS search, timed separately.

- Query embedding: the real default model, one query at a time (SciFact test claims when
  ../shared/data is here, else built-in questions): ONNX Runtime and torch, 1 and 2 threads.
- FAISS search: ragline's `FaissVectors` (IndexIDMap2 over exact inner product) filled with
  random unit vectors at 5k and 100k chunks, k=10, with 1 and 2 OpenMP threads.
- `--index DIR`: also `Index.search` end to end on a real index (e.g. one kept by
  `bench/ingest.py --keep DIR`), lexical, dense and hybrid, with the timings it reports and
  queries/s one at a time, then `Index.search_many` over the same queries (queries/s).

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
    """One query at a time: the ONNX Runtime encoder (the default) and torch (the reference),
    1 and 2 threads each, rounds interleaved."""
    from ragline.embed import create_embedder

    models = {f"{backend}, {threads} thread(s)": create_embedder(backend=backend, threads=threads)
              for backend in ("onnx", "torch") for threads in (1, 2)}
    samples: dict[str, list[float]] = {name: [] for name in models}
    vecs = np.zeros((len(texts), 384), dtype=np.float32)
    for emb in models.values():
        emb.warmup()
        for t in texts[:5]:
            emb.embed_query(t)
    for i, t in enumerate(texts):
        for name, emb in models.items():
            if name.startswith("torch"):  # torch's thread count is per process
                import torch

                torch.set_num_threads(emb.threads)
            t0 = time.perf_counter()
            vec = emb.embed_query(t)
            samples[name].append(time.perf_counter() - t0)
            if name == "onnx, 2 thread(s)":
                vecs[i] = vec
    return {name: pct(times) for name, times in samples.items()}, vecs


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
    """`Index.search` end to end, one query at a time (p50/p95 and queries/s), then
    `Index.search_many` over all the queries at once."""
    from ragline import Index

    out: dict[str, Any] = {}
    with Index(folder) as idx:
        out["chunks"] = idx.status()["chunks"]
        idx.search(texts[0], k=k, mode="dense")
        for mode in ("lexical", "dense", "hybrid"):
            walls, timings = [], []
            t_all = time.perf_counter()
            for t in texts:
                t0 = time.perf_counter()
                res = idx.search(t, k=k, mode=mode)
                walls.append(time.perf_counter() - t0)
                timings.append(res.timings)
            out[mode] = {"total": pct(walls), "qps": len(texts) / (time.perf_counter() - t_all)}
            for key in timings[0]:
                out[mode][key.removesuffix("_ms")] = pct([t.get(key, 0) / 1e3 for t in timings])
            t0 = time.perf_counter()
            idx.search_many(texts, k=k, mode=mode)
            out[mode]["batch_qps"] = len(texts) / (time.perf_counter() - t0)
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

    print("query embedding:")
    for name, d in result["embed"].items():
        line(name, d)
    print("FAISS search (exact inner product, random unit vectors):")
    for size, d in result["faiss"].items():
        line(f"{int(size):>7,} chunks, FaissVectors.search", d["ragline"])
        for threads in (1, 2):
            line(f"{int(size):>7,} chunks, raw, {threads} OMP thread(s)", d[f"threads_{threads}"])
    if "index" in result:
        print(f"Index.search on {args.index} ({result['index']['chunks']} chunks):")
        for mode in ("lexical", "dense", "hybrid"):
            got = result["index"][mode]
            print(f"  {mode}: {got['qps']:.1f} queries/s one at a time, "
                  f"{got['batch_qps']:.1f} queries/s with search_many")
            for key, d in got.items():
                if isinstance(d, dict):
                    line(f"{mode} {key}", d)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
