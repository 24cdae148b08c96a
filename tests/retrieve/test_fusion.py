"""Fusion functions against orders computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from ragline.retrieve.fusion import aggregate, fuse, normalise, rrf, weighted


def run(ids: list[int], scores: list[float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    s = scores if scores is not None else [float(len(ids) - i) for i in range(len(ids))]
    return np.array(ids, dtype=np.int64), np.array(s, dtype=np.float32)


def test_rrf_matches_hand_computed_order() -> None:
    # k = 1 keeps the arithmetic readable: score = sum 1 / (1 + rank)
    a = run([1, 2, 3])  # 1: 1/2, 2: 1/3, 3: 1/4
    b = run([3, 4, 1])  # 3: 1/2, 4: 1/3, 1: 1/4
    ids, scores = rrf([a, b], k=1)
    # 1: 1/2 + 1/4 = .75; 3: 1/4 + 1/2 = .75; 2: 1/3; 4: 1/3  -> ties broken by id
    assert ids.tolist() == [1, 3, 2, 4]
    assert scores.tolist() == pytest.approx([0.75, 0.75, 1 / 3, 1 / 3])


def test_rrf_k60_and_weights() -> None:
    a, b = run([10, 20]), run([20, 30])
    ids, scores = rrf([a, b], k=60)
    assert ids.tolist() == [20, 10, 30]
    assert scores[0] == pytest.approx(1 / 62 + 1 / 61)
    ids, _ = rrf([a, b], k=60, weights=[1.0, 0.0])
    assert ids.tolist() == [10, 20, 30]


def test_weighted_fusion_normalises_each_run() -> None:
    dense = run([1, 2, 3], [0.9, 0.8, 0.1])  # minmax: 1, .875, 0
    lexical = run([3, 4], [20.0, 10.0])  # minmax: 1, 0
    ids, scores = weighted([dense, lexical], weights=[0.5, 0.5])
    # 1: .5*1 + .5*0 (missing -> min 0) = .5; 2: .4375; 3: 0 + .5 = .5; 4: 0 + 0 = 0
    assert ids.tolist() == [1, 3, 2, 4]
    assert scores.tolist() == pytest.approx([0.5, 0.5, 0.4375, 0.0])
    assert fuse("weighted", [dense, lexical], weights=[0.5, 0.5])[0].tolist() == ids.tolist()


def test_normalise_and_unknown_names() -> None:
    assert normalise(np.array([2.0, 2.0])).tolist() == [1.0, 1.0]
    assert normalise(np.array([1.0, 3.0]), "zscore").tolist() == [-1.0, 1.0]
    with pytest.raises(ValueError, match="unknown fusion"):
        fuse("nope", [])


def test_aggregate_chunks_to_documents() -> None:
    ids, scores = run([1, 2, 3, 4], [0.9, 0.8, 0.7, 0.1])
    groups = {1: "a", 2: "b", 3: "a", 4: "c"}
    assert aggregate(ids, scores, groups, "max") == [("a", pytest.approx(0.9)),
                                                     ("b", pytest.approx(0.8)),
                                                     ("c", pytest.approx(0.1))]
    assert [d for d, _ in aggregate(ids, scores, groups, "sum")] == ["a", "b", "c"]
    assert aggregate(ids, scores, groups, "sum")[0][1] == pytest.approx(1.6)
