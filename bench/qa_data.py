"""SQuAD data for bench/qa.py: the fixed sample, the tuning split, the indexes, and the hard
unanswerable set (questions whose gold passage is removed from a second index)."""

from __future__ import annotations

import json
import random
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ragline.eval.qa import unanswerable_set
from ragline.generate.select import Judge
from ragline.index import Index

REPO = Path(__file__).resolve().parents[1]
SQUAD = REPO / ".." / "shared" / "data" / "squad-v1.1-dev"
EXAMPLE = REPO / "src" / "ragline" / "data" / "example"
UNANSWERABLE_SEED = 11
UNANSWERABLE_TUNE = 40  # the first 40 of the set tune the threshold ...
UNANSWERABLE_REPORT = 100  # ... the next 100 are reported (all 140 are out of the index)
JUDGE_HELD_OUT, JUDGE_SEED = 8, 5  # articles the answer-sentence judge never trains on


# data --------------------------------------------------------------------------------------
def sample_questions(n: int, seed: int, tune: bool = False) -> list[dict[str, Any]]:
    """The fixed sample; with `tune`, n others (seed 7) drawn from outside it, to tune on."""
    with (SQUAD / "questions.jsonl").open(encoding="utf-8") as fh:
        questions = [json.loads(line) for line in fh if line.strip()]
    sample = random.Random(seed).sample(questions, n)
    if not tune:
        return sample
    taken = {q["id"] for q in sample}
    return random.Random(7).sample([q for q in questions if q["id"] not in taken], n)


def open_index(path: Path, corpus: Path) -> Index:
    idx = Index(path)
    if idx.status()["chunks"] == 0:
        print(f"building the index at {path} from {corpus} ...", file=sys.stderr)
        t = time.perf_counter()
        idx.add([corpus])
        print(f"  {idx.status()['chunks']} chunks in {time.perf_counter() - t:.0f}s",
              file=sys.stderr)
    return idx


def memo(score: Judge) -> Judge:
    """`score` run once per (question, sentence): rankings of the same sentences share the
    models' work. Its rows may be numbers (a pair model's) or vectors (an embedder's)."""
    seen: dict[tuple[str, str], Any] = {}

    def cached(question: str, sentences: Sequence[str]) -> np.ndarray:
        new = [s for s in dict.fromkeys(sentences) if (question, s) not in seen]
        if new:
            seen.update(zip(((question, s) for s in new), score(question, new), strict=True))
        return np.array([seen[(question, s)] for s in sentences])

    return cached


def cached_embed(index: Index) -> Callable[[Sequence[str]], np.ndarray]:
    """The index's embedder, each text embedded once (`memo` with no question)."""
    embed = memo(lambda _, texts: index.embedder.embed(texts))
    return lambda texts: embed("", texts)


def gold_id(source: str) -> str:
    return source.partition("#")[2]  # "<file>#<_id>"; SQuAD ids contain "#" too



def all_questions() -> list[dict[str, Any]]:
    with (SQUAD / "questions.jsonl").open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def passages() -> list[dict[str, Any]]:
    with (SQUAD / "corpus.jsonl").open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def unanswerable(n: int, tune: bool, sample_n: int, seed: int) -> tuple[list[dict[str, Any]],
                                                                          list[str]]:
    """(questions, every removed passage id): the first n of the tuning part or of the
    reported part; no removed passage is the gold passage of a sampled answerable question,
    of the fixed sample or of the tuning split."""
    keep = [q["gold_passage_id"] for t in (False, True) for q in sample_questions(sample_n,
                                                                                  seed, t)]
    chosen, removed = unanswerable_set(all_questions(), passages(),
                                       UNANSWERABLE_TUNE + UNANSWERABLE_REPORT,
                                       UNANSWERABLE_SEED, exclude=keep)
    part = chosen[:UNANSWERABLE_TUNE] if tune else chosen[UNANSWERABLE_TUNE:]
    return part[:n], removed


def judge_split() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(training questions of the answer-sentence judge, questions of its held-out articles):
    neither holds a question of the fixed sample or the tuning split, nor one about their
    paragraphs or the unanswerable set's removed passages (bench/train_judge.py)."""
    fixed, tune = sample_questions(200, 2026), sample_questions(200, 2026, True)
    _, removed = unanswerable(UNANSWERABLE_REPORT, False, 200, 2026)
    blocked = {q["gold_passage_id"] for q in fixed + tune} | set(removed)
    held = set(random.Random(JUDGE_SEED).sample(sorted({q["title"] for q in fixed}),
                                                JUDGE_HELD_OUT))
    pool = [q for q in all_questions() if q["gold_passage_id"] not in blocked]
    return ([q for q in pool if q["title"] not in held], [q for q in pool if q["title"] in held])


def holdout_index(path: Path, removed: list[str]) -> Index:
    """The corpus without the removed passages, indexed once at `path` (corpus in path/src)."""
    corpus = path / "src" / "corpus.jsonl"
    if not corpus.is_file():
        corpus.parent.mkdir(parents=True, exist_ok=True)
        gone = set(removed)
        tmp = corpus.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            for p in passages():
                if p["_id"] not in gone:
                    fh.write(json.dumps(p, ensure_ascii=False) + "\n")
        tmp.replace(corpus)
    return open_index(path / "index", corpus)
