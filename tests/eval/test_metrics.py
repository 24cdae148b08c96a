"""Metric code paths on hand-made qrels with known answers."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from ragline.eval.beir import load_beir, score_run

QRELS = {"q1": {"a": 1, "b": 1}, "q2": {"c": 1}}


def test_perfect_ranking_scores_one() -> None:
    run = {"q1": ["a", "b", "x", "y"], "q2": ["c", "x"]}
    m = score_run(run, QRELS)
    assert m == {"ndcg@10": pytest.approx(1.0), "recall@10": pytest.approx(1.0),
                 "recall@100": pytest.approx(1.0), "mrr@10": pytest.approx(1.0)}


def test_reversed_ranking_scores_less() -> None:
    run = {"q1": ["y", "x", "b", "a"], "q2": ["x", "c"]}
    m = score_run(run, QRELS)
    # q1: relevant at ranks 3 and 4; q2: relevant at rank 2
    ideal_q1 = 1 + 1 / math.log2(3)
    q1 = (1 / math.log2(4) + 1 / math.log2(5)) / ideal_q1
    q2 = 1 / math.log2(3)
    assert m["ndcg@10"] == pytest.approx((q1 + q2) / 2, abs=1e-4)
    assert m["mrr@10"] == pytest.approx((1 / 3 + 1 / 2) / 2)
    assert m["recall@10"] == pytest.approx(1.0)


def test_cutoffs_and_missing_queries() -> None:
    run = {"q1": [f"x{i}" for i in range(10)] + ["a"]}  # 'a' at rank 11, q2 never answered
    m = score_run(run, QRELS)
    assert m["recall@10"] == 0.0
    assert m["recall@100"] == pytest.approx(0.25)  # (1/2 + 0) / 2
    assert m["mrr@10"] == 0.0


def test_load_beir_keeps_judged_queries(beir_folder: Path) -> None:
    data = load_beir(beir_folder, "test")
    assert len(data.queries) == 6 and "unjudged" not in data.queries
    assert data.qrels["q0"] == {"d#00": 1, "d01": 1}
    with pytest.raises(Exception, match="no qrels for split 'dev'"):
        load_beir(beir_folder, "dev")
