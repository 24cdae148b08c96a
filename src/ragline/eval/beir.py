"""BEIR-style evaluation: load a folder, index its corpus once (cached), run queries, score.

The corpus is indexed with the default ingest pipeline, so the numbers describe what a user
gets. The index lives in a cache folder keyed by the corpus bytes and every setting that
changes the index, so a second run (or a tuning sweep) never re-embeds.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ragline.embed import DEFAULT_MODEL
from ragline.errors import RaglineError
from ragline.index import Index
from ragline.ingest.chunker import ChunkSettings
from ragline.ingest.pipeline import file_hash
from ragline.ingest.progress import IngestProgress
from ragline.paths import cache_home

CACHE_VERSION = "1"


def cache_root() -> Path:
    """Where cached eval indexes go."""
    return cache_home() / "eval"


@dataclass
class BeirData:
    """One split of a BEIR folder: the corpus file, the queries that have qrels, the qrels."""

    name: str
    split: str
    corpus: Path
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


def load_beir(folder: str | Path, split: str = "test") -> BeirData:
    """Read `corpus.jsonl`, `queries.jsonl` and `qrels/<split>.tsv`; only judged queries count."""
    folder = Path(folder).expanduser().resolve()
    corpus = folder / "corpus.jsonl"
    qrels_path = folder / "qrels" / f"{split}.tsv"
    for need in (corpus, folder / "queries.jsonl", qrels_path):
        if not need.is_file():
            raise RaglineError(f"{folder} is not a BEIR folder: {need.name} is missing"
                               + (f" (no qrels for split {split!r})" if need == qrels_path
                                  else ""))
    qrels: dict[str, dict[str, int]] = {}
    for n, line in enumerate(qrels_path.read_text(encoding="utf-8").splitlines()):
        parts = line.strip().split("\t")
        if len(parts) < 3 or (n == 0 and not parts[2].lstrip("-").isdigit()):
            continue  # header or blank
        qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    queries: dict[str, str] = {}
    with (folder / "queries.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                rec = json.loads(line)
                qid = str(rec["_id"])
                if qid in qrels:
                    queries[qid] = str(rec["text"])
    missing = set(qrels) - set(queries)
    for qid in missing:
        qrels.pop(qid)
    if not queries:
        raise RaglineError(f"{qrels_path}: no judged query is in queries.jsonl")
    return BeirData(folder.name, split, corpus, queries, qrels)


def index_key(corpus: Path, model: str, settings: ChunkSettings) -> str:
    """Everything that changes the built index: corpus bytes, model, chunking."""
    raw = json.dumps({"v": CACHE_VERSION, "corpus": file_hash(corpus), "model": model,
                      "chunk_tokens": settings.chunk_tokens, "overlap": settings.overlap})
    return hashlib.sha256(raw.encode()).hexdigest()[:20]


def cached_index(corpus: Path, model: str | None = None, chunk_tokens: int | None = None,
                 overlap: int | None = None, root: Path | None = None,
                 progress: IngestProgress | None = None) -> tuple[Index, bool]:
    """Open the cached index for this corpus, building it first if needed.

    Returns (index, built_now). A build that was interrupted is resumed: the ingest skips
    what it had committed and reuses stored vectors by text hash.
    """
    settings = ChunkSettings(chunk_tokens or ChunkSettings().chunk_tokens,
                             overlap if overlap is not None else ChunkSettings().overlap)
    name = model or DEFAULT_MODEL
    folder = (root or cache_root()) / index_key(corpus, name, settings)
    marker = folder / "complete.json"
    index = Index(folder / "index", model=name, chunk_tokens=settings.chunk_tokens,
                  overlap=settings.overlap)
    if marker.is_file():
        return index, False
    report = index.add([corpus], progress=progress)
    if report.failed:
        raise RaglineError(f"indexing {corpus} failed: {report.failed[0][1]}")
    marker.write_text(json.dumps({"corpus": str(corpus), "model": name,
                                  "chunk_tokens": settings.chunk_tokens,
                                  "overlap": settings.overlap,
                                  "seconds": round(report.seconds, 1),
                                  "chunks": report.chunks_written}))
    return index, True


# running and scoring ----------------------------------------------------------------------
METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr@10")


def doc_ids(index: Index) -> dict[int, str]:
    """Chunk (vector) id to BEIR document id: the loader names sources `path#_id`."""
    out: dict[int, str] = {}
    with index.store.read() as reader:
        for doc in reader.documents():
            prefix = f"{doc.path}#"  # strip the file's own path: ids may contain '#' themselves
            for c in reader.document_chunks(doc.id):
                src = c.source
                out[c.id] = src[len(prefix):] if src.startswith(prefix) else src.rsplit("#", 1)[-1]
    return out


def chunk_depth(k: int, index_chunks: int, index_docs: int) -> int:
    """How many chunks to fetch so that, after merging chunks of one doc, k docs remain."""
    per_doc = max(1.0, index_chunks / max(index_docs, 1))
    return int(k * per_doc * 1.5) + 10


def score_run(run: dict[str, list[str]], qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    """nDCG@10, recall@10/100 and MRR@10 with pytrec_eval (trec_eval's own code).

    Runs are ranked lists; scores given to trec_eval are descending ranks, so ties cannot
    reorder them. Queries with no results count as zero.
    """
    import pytrec_eval

    trec = {q: {d: float(len(docs) - r) for r, d in enumerate(docs)} for q, docs in run.items()}
    top10 = {q: {d: float(10 - r) for r, d in enumerate(docs[:10])} for q, docs in run.items()}
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.10,100"})
    per_q = evaluator.evaluate(trec)
    mrr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(top10)
    n = len(qrels)

    def mean(values: list[float]) -> float:
        return float(sum(values) / n) if n else 0.0

    return {
        "ndcg@10": mean([m["ndcg_cut_10"] for m in per_q.values()]),
        "recall@10": mean([m["recall_10"] for m in per_q.values()]),
        "recall@100": mean([m["recall_100"] for m in per_q.values()]),
        "mrr@10": mean([m["recip_rank"] for m in mrr.values()]),
    }


def run_queries(index: Index, data: BeirData, mode: str, k: int,
                on_query: Callable[[int], None] | None = None) -> tuple[dict[str, list[str]],
                                                                         float]:
    """Search every query one at a time, as a user would; returns (run, queries per second)."""
    from ragline.retrieve.fusion import aggregate

    groups = doc_ids(index)
    n_docs = len(set(groups.values()))
    depth = chunk_depth(k, len(groups), n_docs)
    retriever = index.retriever
    side = depth if mode != "hybrid" else max(depth, retriever.settings.depth)
    if mode != "lexical":
        index.embedder.warmup()
        index.embedder.embed_query("warm up")  # first call pays one-off costs; not timed
    run: dict[str, list[str]] = {}
    with index.store.read() as reader:
        if mode != "dense":
            reader.lexical_search("warm up", 1)  # load BM25 outside the timed loop
        t0 = time.perf_counter()
        for qid, text in data.queries.items():
            (ids, scores), _ = retriever.ranked(reader, text, side, mode)
            docs = aggregate(ids, scores, groups, retriever.settings.aggregate)
            run[qid] = [d for d, _ in docs[:k]]
            if on_query is not None:
                on_query(1)
        seconds = time.perf_counter() - t0
    return run, len(data.queries) / max(seconds, 1e-9)


def evaluate(folder: str | Path, split: str = "test", mode: str = "hybrid", k: int = 100,
             progress: IngestProgress | None = None,
             on_query: Callable[[int], None] | None = None,
             on_start: Callable[[int], None] | None = None) -> dict[str, object]:
    """The whole `ragline eval beir`: load, index (cached), search, score."""
    from dataclasses import asdict

    data = load_beir(folder, split)
    index, built = cached_index(data.corpus, progress=progress)
    try:
        if on_start is not None:
            on_start(len(data.queries))
        run, qps = run_queries(index, data, mode, max(k, 10), on_query)
        metrics = score_run(run, data.qrels)
        status = index.status()
        chunks = status["chunks"]
        config = {"mode": mode, "k": k, "model": index.embedder.name,
                  "chunk_tokens": index.settings.chunk_tokens, "overlap": index.settings.overlap,
                  "embed_dtype": getattr(index.embedder, "dtype", "fp32"),
                  "document_text": "title + text", "chunks": chunks,
                  "index_cache": str(Path(index.location).parent), "index_built_now": built}
        if mode != "dense":
            config["bm25"] = asdict(index.retriever.settings.bm25)
        if mode == "hybrid":
            fusion = asdict(index.retriever.settings)
            config["fusion"] = {key: value for key, value in fusion.items() if key != "bm25"}
        else:
            config["aggregate"] = index.retriever.settings.aggregate
    finally:
        index.close()
    return {"dataset": data.name, "split": split, "queries": len(data.queries),
            **{m: round(metrics[m], 4) for m in METRICS}, "qps": round(qps, 2),
            "config": config}
