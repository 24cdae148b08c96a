"""Conformance suite for VectorStore backends.

Every backend must pass it. To add one (pgvector, Milvus, ...), add a factory to STORES:
`factory(folder, dim, generation) -> store`; `generation` 0 means a new, empty store.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from ragline.store import FaissStore, VectorStore

DIM = 16
StoreFactory = Callable[[Path, int, int], VectorStore]

STORES: dict[str, StoreFactory] = {
    "faiss": lambda folder, dim, generation: FaissStore(folder, dim, generation),
}


@pytest.fixture(params=sorted(STORES))
def factory(request: pytest.FixtureRequest) -> StoreFactory:
    return STORES[request.param]


@pytest.fixture
def store(factory: StoreFactory, tmp_path: Path) -> VectorStore:
    return factory(tmp_path, DIM, 0)


def _unit(n: int, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_is_a_vector_store(store: VectorStore) -> None:
    assert isinstance(store, VectorStore)
    assert store.dim == DIM and len(store) == 0


def test_add_get_search(store: VectorStore) -> None:
    vecs = _unit(20)
    ids = np.arange(100, 120, dtype=np.int64)
    store.add(ids, vecs)
    assert len(store) == 20
    assert sorted(store.ids().tolist()) == ids.tolist()
    np.testing.assert_allclose(store.get(ids[[3, 0, 7]]), vecs[[3, 0, 7]], rtol=1e-6)
    scores, found = store.search(vecs[[5, 9]], 3)
    assert found.shape == (2, 3) and scores.shape == (2, 3)
    assert found[0, 0] == 105 and found[1, 0] == 109
    assert scores[0, 0] == pytest.approx(1.0, abs=1e-5)
    assert (np.diff(scores, axis=1) <= 1e-6).all()  # best first


def test_search_empty_and_k_larger_than_store(store: VectorStore) -> None:
    scores, ids = store.search(_unit(1), 5)
    assert ids.shape[1] == 0 or (ids == -1).all()
    store.add(np.array([1, 2], dtype=np.int64), _unit(2))
    scores, ids = store.search(_unit(1, seed=3), 10)
    real = ids[0][ids[0] >= 0]
    assert sorted(real.tolist()) == [1, 2]


def test_remove(store: VectorStore) -> None:
    store.add(np.arange(10, dtype=np.int64), _unit(10))
    assert store.remove(np.array([2, 5, 999], dtype=np.int64)) == 2
    assert store.remove(np.array([], dtype=np.int64)) == 0
    assert sorted(store.ids().tolist()) == [0, 1, 3, 4, 6, 7, 8, 9]
    _, found = store.search(_unit(10)[[2]], 8)
    assert 2 not in found[0] and 5 not in found[0]


def test_wrong_dimension_refused_before_any_change(store: VectorStore) -> None:
    store.add(np.array([1], dtype=np.int64), _unit(1))
    bad = np.ones((2, DIM + 1), dtype=np.float32)
    with pytest.raises(ValueError, match="dimension"):
        store.add(np.array([2, 3], dtype=np.int64), bad)
    with pytest.raises(ValueError):
        store.add(np.array([2, 3, 4], dtype=np.int64), _unit(2))  # ids and rows disagree
    with pytest.raises(ValueError):
        store.search(np.ones((1, DIM - 1), dtype=np.float32), 1)
    assert store.ids().tolist() == [1]


def test_duplicate_id_refused(store: VectorStore) -> None:
    store.add(np.array([7, 8], dtype=np.int64), _unit(2))
    with pytest.raises(ValueError, match="already"):
        store.add(np.array([9, 8], dtype=np.int64), _unit(2, seed=1))
    assert sorted(store.ids().tolist()) == [7, 8]
    with pytest.raises(ValueError):
        store.add(np.array([11, 11], dtype=np.int64), _unit(2, seed=2))  # within one batch
    assert sorted(store.ids().tolist()) == [7, 8]


def test_nan_and_inf_refused(store: VectorStore) -> None:
    vecs = _unit(3)
    vecs[1, 4] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        store.add(np.arange(3, dtype=np.int64), vecs)
    vecs[1, 4] = np.inf
    with pytest.raises(ValueError):
        store.add(np.arange(3, dtype=np.int64), vecs)
    assert len(store) == 0


def test_commit_and_reopen_keeps_everything(factory: StoreFactory, tmp_path: Path) -> None:
    store = factory(tmp_path, DIM, 0)
    vecs = _unit(30)
    store.add(np.arange(30, dtype=np.int64), vecs)
    store.remove(np.array([4, 5], dtype=np.int64))
    store.commit(1)
    store.add(np.array([100], dtype=np.int64), _unit(1, seed=9))  # not committed
    reopened = factory(tmp_path, DIM, 1)
    assert sorted(reopened.ids().tolist()) == [i for i in range(30) if i not in (4, 5)]
    np.testing.assert_allclose(reopened.get(np.array([0, 29])), vecs[[0, 29]], rtol=1e-6)
    _, found = reopened.search(vecs[[17]], 1)
    assert found[0, 0] == 17
    reopened.add(np.array([200], dtype=np.int64), _unit(1, seed=5))
    reopened.commit(2)
    again = factory(tmp_path, DIM, 2)
    assert len(again) == 29
    older = factory(tmp_path, DIM, 1)  # an older generation stays as it was committed
    assert len(older) == 28


def test_reopen_with_other_dimension_refused(factory: StoreFactory, tmp_path: Path) -> None:
    store = factory(tmp_path, DIM, 0)
    store.add(np.array([1], dtype=np.int64), _unit(1))
    store.commit(1)
    with pytest.raises(ValueError, match="dimension"):
        factory(tmp_path, DIM * 2, 1)


def test_missing_generation_is_an_error(factory: StoreFactory, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        factory(tmp_path, DIM, 42)
