"""Fit the weights of generate/select.py: which sentence answers, and whether any does.

    .venv/bin/python bench/qa_select.py --index /tmp/ragline-bench-squad

Training questions: 600 SQuAD v1.1 dev questions (seed 99) of the 8 articles the sentence
judge (embed/cross.py, bench/train_judge.py) and the span reader (embed/reader.py,
bench/train_reader.py) never trained on, so their scores here are what they give documents
they have not seen; none of them is of bench/qa.py's fixed sample or tuning split
or about their paragraphs (`qa_data.judge_split`). Each is asked of the full index: the
sentences of the best 3 passages (what `ask` ranks), their features (`select.features`, the
judge's score and the reader's lead among them).
- Sentence scorer: a conditional logit over each question's sentences (softmax; the target is
  spread over the sentences holding a gold answer), on the questions where one does.
- Answerability: a logistic regression of `select.signals` of the best sentence, with each
  training question asked twice: as is (answerable), and with its gold passage and every passage
  holding a gold answer dropped from the hits (a near miss, like bench/qa.py's hard
  unanswerable set, which is built the same way but from a second index).
Both are fitted on standardised features with a little L2, then printed in raw units, ready to
paste into generate/select.py. Then both are checked on the tuning split (200 answerable
questions, the 40 tuning unanswerable ones) and on the fixed sample (200 and 100): top-1 /
top-2 / top-3 sentence holds a gold answer, and the abstention curve (with the answerability
weights select.py ships: rerun after pasting them for the new curve).

Results (2026-11-26, the weights in generate/select.py, with the span reader's lead; one run,
24 min):
- Best sentence holds a gold answer (train, in-sample / tune / fixed): question-sentence cosine
  + word overlap 0.67 (fixed); before the judge 0.727 / 0.735 / 0.70; with the judge 0.822 /
  0.81 / 0.76; with the judge and the reader 0.852 / 0.835 / 0.79. Best 2: 0.913 / 0.89 /
  0.84, best 3: 0.938 / 0.91 / 0.88; some sentence of the 3 passages: 0.97 / 0.96 / 0.915.
- "unseen": the other 424 questions of those articles, seen by neither model nor this fit:
  0.856 (0.821 with the judge alone among the features, 0.759 before it).
- Answerability: bench/qa.py measures the whole pipeline and chooses the threshold on its
  tuning split: 0.40 (answered 0.88, abstained 0.75 on all 200 of it and the 40 tuning
  unanswerable ones; confidence AUC 0.913).
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from qa_data import (
    SQUAD,
    gold_id,
    holdout_index,
    judge_split,
    open_index,
    sample_questions,
    unanswerable,
)

from ragline.eval.qa import contains
from ragline.generate import select
from ragline.generate.factory import packaged_judge, packaged_reader
from ragline.generate.quote import leads, rank_hits
from ragline.index import Index
from ragline.types import Hit

Drop = Callable[[Hit], bool]
JUDGE = packaged_judge()  # the answer-sentence cross-encoder `ask` ranks with
READER = packaged_reader()  # ... and the span reader, by its lead (embed/reader.py)
LEAD = leads(READER) if READER is not None else None


def candidates(index: Index, q: dict[str, Any], drop: Drop | None = None
               ) -> tuple[list[select.Sentence], float]:
    """The ranked sentences of the best 3 passages left after `drop`, and the dense cosine of
    the best passage left (what `ask` gates on)."""
    keep = (lambda h: not drop(h)) if drop else (lambda h: True)
    hits = [h for h in index.search(q["question"], k=12).hits if keep(h)][:3]
    dense = [h for h in index.search(q["question"], k=12, mode="dense").hits if keep(h)]
    _, ranked = rank_hits(q["question"], hits, index.embedder.embed, JUDGE, LEAD)
    return ranked, dense[0].score if dense else 0.0


def standardise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return x.mean(0), x.std(0) + 1e-9


def fit_scorer(groups: Sequence[tuple[np.ndarray, np.ndarray]], l2: float = 1e-2,
               steps: int = 3000, lr: float = 0.5) -> np.ndarray:
    """Conditional logit over each group's rows; returns raw-unit weights."""
    mu, sd = standardise(np.vstack([x for x, _ in groups]))
    w = np.zeros(len(mu))
    for _ in range(steps):
        grad = l2 * w
        for x, gold in groups:
            z = (x - mu) / sd
            s = z @ w
            p = np.exp(s - s.max())
            grad += z.T @ (p / p.sum() - gold / gold.sum()) / len(groups)
        w -= lr * grad
    return w / sd


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-2, steps: int = 4000,
                 lr: float = 0.5) -> tuple[float, np.ndarray]:
    """(bias, raw-unit weights) of P(y = 1 | x)."""
    mu, sd = standardise(x)
    z = np.hstack([np.ones((len(x), 1)), (x - mu) / sd])
    w = np.zeros(z.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-z @ w))
        w -= lr * (z.T @ (p - y) / len(y) + l2 * np.r_[0.0, w[1:]])
    raw = w[1:] / sd
    return float(w[0] - np.sum(w[1:] * mu / sd)), raw


def signal_row(ranked: Sequence[select.Sentence], relevance: float) -> list[float]:
    s = select.signals(ranked, relevance)
    return [s[name] for name in select.ANSWERABLE_WEIGHTS]


def topk(rows: Sequence[tuple[np.ndarray, np.ndarray]], w: np.ndarray, k: int) -> float:
    return float(np.mean([gold[np.argsort(-(x @ w))[:k]].any() for x, gold in rows]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", type=Path, default=Path("/tmp/ragline-bench-squad"))
    ap.add_argument("--train", type=int, default=600)
    args = ap.parse_args()
    if not (SQUAD / "corpus.jsonl").is_file():
        sys.exit(f"SQuAD data not found at {SQUAD}")
    idx = open_index(args.index, SQUAD / "corpus.jsonl")
    fixed, tune = sample_questions(200, 2026), sample_questions(200, 2026, True)
    # the judge's held-out articles: it never trained on them, so its scores there are what
    # it gives a user's documents (bench/train_judge.py)
    held = judge_split()[1]
    train = random.Random(99).sample(held, args.train)
    unseen = [q for q in held if q not in train]  # seen by neither the judge nor this fit

    def sentences(index: Index, qs: Sequence[dict[str, Any]]) -> list[tuple[np.ndarray,
                                                                              np.ndarray]]:
        out = []
        for q in qs:
            ranked, _ = candidates(index, q)
            out.append((np.array([s.features for s in ranked]).reshape(-1, len(
                select.FEATURES)), np.array([contains(s.text, q["answers"]) for s in ranked])))
        return out

    data = {"train": sentences(idx, train), "unseen": sentences(idx, unseen),
            "tune": sentences(idx, tune), "fixed": sentences(idx, fixed)}
    w = fit_scorer([(x, g.astype(float)) for x, g in data["train"] if g.any()])
    print("sentence scorer WEIGHTS =", tuple(round(float(v), 3) for v in w))
    for name, rows in data.items():
        print(f"  {name}: best sentence holds gold {topk(rows, w, 1):.3f}, best 2 "
              f"{topk(rows, w, 2):.3f}, best 3 {topk(rows, w, 3):.3f}, any "
              f"{np.mean([g.any() for _, g in rows]):.3f}")

    # the answerability fit and the curves rank with the scorer just fitted, as `ask` will
    # once these weights are pasted into generate/select.py
    select.WEIGHTS = tuple(float(v) for v in w)

    def near_miss(q: dict[str, Any]) -> Drop:
        return lambda h: gold_id(h.source) == q["gold_passage_id"] or contains(h.text,
                                                                               q["answers"])

    x = np.array([signal_row(*candidates(idx, q)) for q in train]
                 + [signal_row(*candidates(idx, q, near_miss(q))) for q in train])
    y = np.r_[np.ones(len(train)), np.zeros(len(train))]
    bias, raw = fit_logistic(x, y)
    print(f"ANSWERABLE_BIAS = {bias:.3f}")
    print("ANSWERABLE_WEIGHTS =", dict(zip(select.ANSWERABLE_WEIGHTS,
                                           (round(float(v), 3) for v in raw), strict=True)))
    print("  (generate/select.py has the weights it ships; these are the ones just fitted)")
    for label, answerable, tune_flag, n in (("tune", tune, True, 40), ("fixed", fixed, False,
                                                                          100)):
        qs, removed = unanswerable(n, tune_flag, 200, 2026)
        hold = holdout_index(Path(f"{args.index}-holdout"), removed)
        pa = [select.confidence(select.signals(*candidates(idx, q))) for q in answerable]
        pu = [select.confidence(select.signals(*candidates(hold, q))) for q in qs]
        hold.close()
        for t in (0.3, 0.325, 0.35, 0.375, 0.4, 0.45, 0.5):
            print(f"  {label} threshold {t}: answered {np.mean(np.array(pa) >= t):.3f} of "
                  f"answerable, abstained on {np.mean(np.array(pu) < t):.3f} of unanswerable")


if __name__ == "__main__":
    main()
