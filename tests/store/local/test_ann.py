"""The local store's IVF index past its threshold: recall@10 against exact search, deletes and
filters honoured, the choice recorded in the index and reported by `stats()`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ragline.store.base import ChunkRecord, DocumentRecord
from ragline.store.filters import parse_filter
from ragline.store.local import LocalStore
from ragline.store.local import ann as ann_module
from ragline.store.local.ann import TARGET_RECALL, nlist_for
from ragline.store.local.vectors import FaissVectors

N, DIM = 20_000, 384


def clustered(n: int, seed: int) -> np.ndarray:
    """Unit vectors around 1,000 centres: neighbours are close but not trivially so."""
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((1000, DIM)).astype(np.float32)
    rng = np.random.default_rng(seed)
    v = centres[rng.integers(0, 1000, n)] + 0.6 * rng.standard_normal((n, DIM), np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def recall(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.mean([len(set(g) & set(w)) / len(w) for g, w in zip(got, want,
                                                                           strict=True)]))


@pytest.fixture(scope="module")
def ann(tmp_path_factory: pytest.TempPathFactory) -> tuple[FaissVectors, np.ndarray]:
    vecs = clustered(N, 1)
    v = FaissVectors(tmp_path_factory.mktemp("ann"), DIM, ann_threshold=10_000)
    v.add(np.arange(1, N + 1), vecs)
    assert v.maybe_build_ann() and v.approximate and not v.maybe_build_ann()
    return v, vecs


def test_recall_at_10_against_exact(ann: tuple[FaissVectors, np.ndarray]) -> None:
    v, vecs = ann
    queries = clustered(200, 2)
    exact = np.argsort(-(queries @ vecs.T), axis=1)[:, :10] + 1
    _, got = v.search(queries, 10)
    assert recall(got, exact) >= 0.95
    assert v.ann is not None and v.ann.sample_recall >= TARGET_RECALL
    assert v.ann.nlist == nlist_for(N) and v.ann.nprobe < v.ann.nlist  # really approximate
    assert v.describe().startswith("ivf (FAISS IVF-Flat, nlist=")


def test_deletes_are_honoured(ann: tuple[FaissVectors, np.ndarray]) -> None:
    v, vecs = ann
    queries = clustered(50, 3)
    _, before = v.search(queries, 10)
    gone = np.unique(before[:, :3])
    assert v.remove(gone) == len(gone)
    _, after = v.search(queries, 10)
    assert not np.isin(after, gone).any() and (after > 0).all()
    assert not np.isin(gone, v.ids()).any()
    np.testing.assert_allclose(v.get([5, 7]), vecs[[4, 6]], atol=1e-6)


@pytest.mark.parametrize("exact_filtered", [ann_module.EXACT_FILTERED, 0])
def test_filters_are_honoured(ann: tuple[FaissVectors, np.ndarray], exact_filtered: int,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Both filter paths: every list (exact) and 3 x nprobe / share lists (probing)."""
    monkeypatch.setattr(ann_module, "EXACT_FILTERED", exact_filtered)
    v, vecs = ann
    queries = clustered(50, 3)
    for share in (0.01, 0.10):
        allowed = np.intersect1d(np.arange(1, N + 1)[:: int(1 / share)], v.ids())
        _, got = v.search(queries, 10, allowed)
        assert np.isin(got, allowed).all() and (got > 0).all()
        exact = allowed[np.argsort(-(queries @ vecs[allowed - 1].T), axis=1)[:, :10]]
        assert recall(got, exact) >= (1.0 if exact_filtered else 0.95), share


def test_store_records_the_choice_and_survives_reopen(tmp_path: Path) -> None:
    vecs = clustered(3000, 4)
    store = LocalStore(tmp_path / "idx", ann_threshold=2000)
    with store.write() as w:
        w.set_info(model="m", dim=DIM, pooling="mean", chunk_tokens=8, overlap=0)
        for d in range(0, 3000, 100):
            meta = {"bucket": d // 100 % 10}
            doc = w.put_document(DocumentRecord(f"/d{d}", "h", 1, 1.0, meta))
            w.add_chunks(doc, [ChunkRecord(f"c{i}", f"d{d}", i, f"t{i}", f"x{i}", 0, 1,
                                           meta=meta) for i in range(d, d + 100)],
                         vecs[d : d + 100])
        w.commit()
    store.close()
    store = LocalStore(tmp_path / "idx", ann_threshold=2000)
    with store.read() as r:
        kind = str(r.stats()["vector_index"])
        assert kind.startswith("ivf (FAISS IVF-Flat") and "nprobe=" in kind
        assert r.info()["vector_index"] == kind and r.verify() == []
        ids, _ = r.dense_search(vecs[:1], 5, parse_filter("bucket == 0"))[0]
        assert ids[0] == r.chunk_by_key("c0").id  # type: ignore[union-attr]
    store.close()


def test_an_outgrown_ivf_is_rebuilt_with_the_same_ids(tmp_path: Path) -> None:
    vecs = clustered(16000, 5)
    v = FaissVectors(tmp_path, DIM, ann_threshold=1000)
    v.add(np.arange(1, 4001), vecs[:4000])
    assert v.maybe_build_ann() and v.index.nlist == nlist_for(4000)
    v.add(np.arange(4001, 8001), vecs[4000:8000])
    assert not v.maybe_build_ann()  # 2x: the lists still fit
    v.add(np.arange(8001, 16001), vecs[8000:])
    v.remove([7, 8])
    assert v.maybe_build_ann() and v.index.nlist == nlist_for(15998)
    assert sorted(v.ids().tolist()) == [i for i in range(1, 16001) if i not in (7, 8)]
    np.testing.assert_allclose(v.get([9, 16000]), vecs[[8, 15999]], atol=1e-6)
