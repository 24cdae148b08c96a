"""Retrieval benchmark and tuning on a BEIR folder (default: ../shared/data/beir-scifact).

    python bench/retrieval.py --split train --tune      # the sweep; choose settings here
    python bench/retrieval.py --split test              # the final table, run once

The corpus index comes from the same cache as `ragline eval beir`, so nothing is embedded
twice. For the sweep, query vectors and dense candidates are computed once and every fusion
variant is scored in memory; the final table times each mode end to end, one query at a
time, through the same code path as `ragline eval beir` (query embedding included).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from ragline.eval.beir import (  # noqa: E402
    BeirData,
    cached_index,
    chunk_depth,
    doc_ids,
    load_beir,
    run_queries,
    score_run,
)
from ragline.index import Index  # noqa: E402
from ragline.retrieve.fusion import Run, aggregate  # noqa: E402
from ragline.retrieve.hybrid import HybridSettings  # noqa: E402
from ragline.store.lexical import Bm25Settings, lexical_text  # noqa: E402
from ragline.store.local.bm25 import Bm25Index  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "beir-scifact"


@dataclass(frozen=True)
class Prf:
    """Pseudo-relevance feedback (measured, not shipped): expand the BM25 query with the top
    `terms` terms of the first fused ranking's best `docs` chunks, then fuse again."""

    docs: int = 5
    terms: int = 10
    weight: float = 0.5


def feedback(settings: HybridSettings, prf: Prf, lex: Bm25Index, query: str, dense: Run,
             lexical: Run, depth: int) -> Run:
    first, _ = settings.fuse(dense, lexical)
    terms = lex.expand(query, first[: prf.docs].tolist(), prf.terms, prf.weight)
    return lex.search(terms, depth)


def lexical_index(index: Index, settings: Bm25Settings) -> Bm25Index:
    with index.store.read() as reader:
        rows = reader.chunks(reader.chunk_ids().tolist())
    ids = sorted(rows)
    lex = Bm25Index(settings)
    lex.build(ids, [rows[i].text_hash for i in ids],
              [lexical_text(rows[i].title, rows[i].heading, rows[i].text,
                            settings.title_weight) for i in ids])
    return lex


class Sweep:
    """Everything needed to score a configuration in memory."""

    def __init__(self, index: Index, data: BeirData, depth: int = 300) -> None:
        self.index, self.data = index, data
        self.groups = doc_ids(index)
        self.qids = list(data.queries)
        texts = [data.queries[q] for q in self.qids]
        t0 = time.perf_counter()
        qv = index.embedder.embed(texts)
        with index.store.read() as reader:
            runs = reader.dense_search(qv, depth)
        self.dense: dict[str, Run] = dict(zip(self.qids, runs, strict=True))
        print(f"dense candidates for {len(texts)} queries: {time.perf_counter() - t0:.1f}s",
              file=sys.stderr)
        self.k = 100
        self.depth = chunk_depth(self.k, len(self.groups), len(set(self.groups.values())))
        self._lex: dict[tuple[float, float, int], dict[str, Run]] = {}
        self._lex_index: dict[int, Bm25Index] = {}
        self._doc_int: dict[str, int] = {}

    def lexical(self, bm25: Bm25Settings, depth: int) -> dict[str, Run]:
        key = (bm25.k1, bm25.b, bm25.title_weight)
        if key not in self._lex:
            base = self._lex_index.get(bm25.title_weight)
            if base is None:
                base = self._lex_index[bm25.title_weight] = lexical_index(self.index, bm25)
            base.reset_settings(bm25)
            self._lex[key] = {q: base.search(self.data.queries[q], 300) for q in self.qids}
        return {q: (ids[:depth], s[:depth]) for q, (ids, s) in self._lex[key].items()}

    def doc_level(self, run: Run) -> Run:
        """A chunk run turned into a document run (max per document), documents as ints."""
        docs = aggregate(*run, self.groups, "max")
        ids = np.array([self._doc_int.setdefault(d, len(self._doc_int)) for d, _ in docs],
                       dtype=np.int64)
        return ids, np.array([v for _, v in docs], dtype=np.float32)

    def score(self, mode: str, s: HybridSettings, level: str = "chunk",
              prf: Prf | None = None) -> dict[str, float]:
        depth = max(self.depth, s.depth) if mode == "hybrid" else self.depth
        lex = self.lexical(s.bm25, depth) if mode != "dense" else {}
        run = {}
        for q in self.qids:
            if mode == "dense":
                ranked = (self.dense[q][0][:depth], self.dense[q][1][:depth])
            elif mode == "lexical":
                ranked = lex[q]
            else:
                dense = (self.dense[q][0][: s.depth], self.dense[q][1][: s.depth])
                lexical = (lex[q][0][: s.depth], lex[q][1][: s.depth])
                if prf is not None:
                    lexical = feedback(s, prf, self._lex_index[s.bm25.title_weight],
                                       self.data.queries[q], dense, lexical, s.depth)
                if level == "doc":
                    ids, scores = s.fuse(self.doc_level(dense), self.doc_level(lexical))
                    names = {v: k for k, v in self._doc_int.items()}
                    run[q] = [names[int(i)] for i in ids[: self.k]]
                    continue
                ranked = s.fuse(dense, lexical)
            run[q] = [d for d, _ in aggregate(*ranked, self.groups, s.aggregate)[: self.k]]
        return score_run(run, self.data.qrels)


def row(name: str, m: dict[str, float], qps: float | None = None) -> str:
    cells = [f"{m[k]:.4f}" for k in ("ndcg@10", "recall@10", "recall@100", "mrr@10")]
    return f"| {name} | " + " | ".join(cells) + (f" | {qps:.1f} |" if qps else " | |")


STAGES = ("base", "bm25", "fusion", "level", "depth", "prf")


def tune(sweep: Sweep, base: HybridSettings,
         stages: tuple[str, ...] = STAGES) -> list[tuple[str, dict[str, float]]]:
    """One lever at a time around `base` (coordinate ascent, not a joint grid: less overfit)."""
    out: list[tuple[str, dict[str, float]]] = []

    def add(name: str, mode: str, s: HybridSettings, prf: Prf | None = None) -> None:
        m = sweep.score(mode, s, prf=prf)
        out.append((name, m))
        print(row(name, m), flush=True)

    if "base" in stages:
        for mode in ("dense", "lexical", "hybrid"):
            for agg in ("max", "sum"):
                add(f"{mode} agg={agg}", mode, replace(base, aggregate=agg))
    if "bm25" in stages:
        for k1, b, tw in itertools.product((0.9, 1.2, 1.5), (0.5, 0.75, 0.9), (1, 2)):
            bm = Bm25Settings(k1=k1, b=b, title_weight=tw)
            add(f"lexical k1={k1} b={b} title={tw}", "lexical", replace(base, bm25=bm))
    if "fusion" in stages:
        for rrf_k in (10, 30, 60, 100):
            for wl in (0.7, 1.0, 1.5):
                add(f"hybrid rrf k={rrf_k} w_lex={wl}", "hybrid",
                    replace(base, fusion="rrf", rrf_k=rrf_k, weights=(1.0, wl)))
        for norm in ("minmax", "zscore"):
            for alpha in (0.3, 0.4, 0.5, 0.6, 0.7):
                add(f"hybrid weighted {norm} w_dense={alpha}", "hybrid",
                    replace(base, fusion="weighted", norm=norm, weights=(alpha, 1 - alpha)))
    if "level" in stages:
        for fusion in ("rrf", "weighted"):
            for level in ("chunk", "doc"):
                m = sweep.score("hybrid", replace(base, fusion=fusion), level)
                out.append((f"hybrid {fusion} fused at {level} level", m))
                print(row(out[-1][0], m), flush=True)
    if "depth" in stages:
        for depth in (50, 100, 200):
            add(f"hybrid depth={depth}", "hybrid", replace(base, depth=depth))
    if "prf" in stages:
        for docs, terms, weight in itertools.product((3, 5, 10), (5, 10, 20), (0.3, 0.5, 1.0)):
            add(f"hybrid prf docs={docs} terms={terms} w={weight}", "hybrid", base,
                Prf(docs, terms, weight))
    return out


def parse_base(pairs: list[str]) -> HybridSettings:
    """--set k1=0.9 --set rrf_k=30 ...: BM25 fields go to .bm25, the rest to HybridSettings."""
    base = HybridSettings()
    bm25: dict[str, object] = {}
    top: dict[str, object] = {}
    for pair in pairs:
        key, _, raw = pair.partition("=")
        value: object = json.loads(raw) if raw[:1] in "[{" or raw.replace(".", "").isdigit() \
            else raw
        if key in Bm25Settings.__dataclass_fields__:
            bm25[key] = value
        else:
            top[key] = tuple(value) if isinstance(value, list) else value
    return replace(base, bm25=replace(base.bm25, **bm25), **top)


def final_table(index: Index, data: BeirData) -> list[str]:
    lines = ["| mode | nDCG@10 | recall@10 | recall@100 | MRR@10 | queries/s |",
             "|---|---|---|---|---|---|"]
    for mode in ("lexical", "dense", "hybrid"):
        run, qps = run_queries(index, data, mode, 100)
        lines.append(row(mode, score_run(run, data.qrels), qps))
        print(lines[-1], flush=True)
    return lines


def bm25_scale(corpus: Path, sizes: list[int]) -> None:
    """What keeping BM25 beside the vectors costs: full rebuild (an index without a BM25 file),
    a checkpoint's incremental update (500 removed, 500 added) + save, and a reader's load."""
    import tempfile

    base = [lexical_text(r.get("title"), None, r["text"], 1)
            for r in map(json.loads, corpus.read_text(encoding="utf-8").splitlines())]
    folder = Path(tempfile.mkdtemp())
    print("| chunks | full build | checkpoint (-500/+500, save) | file MB | load | query ms |")
    print("|---|---|---|---|---|---|")
    for n in sizes:
        texts = [f"{base[i % len(base)]} copy{i // len(base)}" for i in range(n)]
        ids = list(range(n))
        cpu = time.perf_counter()
        lex = Bm25Index()
        lex.build(ids, [str(i) for i in ids], texts)
        lex.save(folder / "l.npz")
        build = time.perf_counter() - cpu
        ids2 = ids[500:] + list(range(n, n + 500))
        cpu = time.perf_counter()
        lex.update(ids2, [str(i) for i in ids2], [texts[i % n] for i in ids2[-500:]])
        lex.save(folder / "l.npz")
        step = time.perf_counter() - cpu
        cpu = time.perf_counter()
        loaded = Bm25Index.load(folder / "l.npz", lex.settings)
        assert loaded is not None
        loaded.search("warm", 1)
        load = time.perf_counter() - cpu
        queries = ["smoking and lung cancer risk", "vitamin D bone density", "T cell memory"]
        cpu = time.perf_counter()
        for q in queries * 10:
            loaded.search(q, 100)
        per_q = (time.perf_counter() - cpu) / 30 * 1e3
        mb = (folder / "l.npz").stat().st_size / 1e6
        print(f"| {n} | {build:.1f}s | {step:.2f}s | {mb:.0f} | {load:.2f}s | {per_q:.1f} |",
              flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--split", default="train")
    ap.add_argument("--tune", action="store_true", help="run the sweep (use the train split)")
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument("--stages", default=",".join(STAGES), help="which levers to sweep")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="the settings to sweep around (default: the shipped ones)")
    ap.add_argument("--bm25-scale", default="", metavar="N,N",
                    help="only time BM25 upkeep at these chunk counts (wall seconds)")
    args = ap.parse_args()
    if args.bm25_scale:
        return bm25_scale(args.data / "corpus.jsonl", [int(n) for n in args.bm25_scale.split(",")])
    if not args.data.is_dir():
        sys.exit(f"{args.data} is not here")
    data = load_beir(args.data, args.split)
    index, _ = cached_index(data.corpus)
    print(f"{data.name} {args.split}: {len(data.queries)} queries; "
          f"{index.status()['chunks']} chunks", flush=True)
    results: dict[str, object] = {"dataset": data.name, "split": args.split}
    if args.tune:
        if args.split == "test":
            sys.exit("tune on train, not on test")
        print("| setting | nDCG@10 | recall@10 | recall@100 | MRR@10 | |\n" + "|---" * 6 + "|")
        base = parse_base(args.set)
        print(f"around {base}", flush=True)
        results["sweep"] = tune(Sweep(index, data), base, tuple(args.stages.split(",")))
    else:
        results["table"] = final_table(index, data)
        results["settings"] = repr(index.retriever.settings)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
