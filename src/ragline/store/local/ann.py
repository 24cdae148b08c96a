"""The local store's approximate index: FAISS IVF-Flat, built once the corpus is large enough.

Why IVF and not HNSW (measured on this 2-core machine, 384-d clustered vectors, one
query thread): FAISS HNSW cannot remove vectors (ragline deletes and replaces documents), and
built 2-7x slower (100k: 48 s vs 18 s); IVF removes by id, filters with an IDSelector, and
keeps the vectors uncompressed (memory ~1.05x the raw bytes). Exact search costs ~0.9 ms at
20k vectors, ~3 ms at 50k and ~10 ms at 100k per query, so past `ANN_THRESHOLD` the index is
converted. `nprobe` is not guessed: it is the smallest that reaches `TARGET_RECALL` recall@10
against exact search on a sample of the index's own vectors, and it is recorded with the
index (FAISS stores nlist and nprobe in the file; the catalog records the description).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import faiss
import numpy as np

ANN_THRESHOLD = 50_000
TARGET_RECALL = 0.97  # on the sample, so that held-out queries stay above 0.95
_NPROBES = (8, 16, 32, 64, 128, 256, 512)
_SAMPLE_QUERIES = 200
FILTER_PROBES = 3
#: filters keeping up to this many chunks are searched exactly (~10 ms of distances)
EXACT_FILTERED = 100_000


@dataclass(frozen=True)
class AnnInfo:
    """What was built, for `ragline status` and the catalog."""

    nlist: int
    nprobe: int
    trained_on: int
    sample_recall: float

    def describe(self) -> str:
        return (f"ivf (FAISS IVF-Flat, nlist={self.nlist}, nprobe={self.nprobe}, built at "
                f"{self.trained_on} vectors, sample recall@10 {self.sample_recall:.3f})")


def nlist_for(n: int) -> int:
    """~2 sqrt(n) lists (k-means stays quick at 1M), at least 39 training points each."""
    return max(1, min(int(2 * math.sqrt(n)), n // 39))


def all_vectors(index: faiss.Index) -> tuple[np.ndarray, np.ndarray]:
    """(ids, vectors) of an IndexIDMap2(IndexFlat) or of an IVF-Flat (to rebuild it)."""
    if isinstance(index, faiss.IndexIVF):
        ids = ivf_ids(index)
        return ids, index.reconstruct_batch(ids)
    ids = faiss.vector_to_array(index.id_map).astype(np.int64)
    return ids, index.index.reconstruct_n(0, index.ntotal)


def needs_build(index: faiss.Index, threshold: int) -> bool:
    """Exact past the threshold, or an IVF whose corpus grew ~4x since it was trained (its
    lists are then too few and their centroids stale: on SciFact an IVF trained at 1k chunks
    and grown to 10k lost 0.015 hybrid nDCG@10)."""
    if isinstance(index, faiss.IndexIVF):
        return nlist_for(index.ntotal) >= 2 * index.nlist
    return index.ntotal >= threshold


def _tune_nprobe(ivf: faiss.IndexIVFFlat, vectors: np.ndarray, seed: int = 0
                 ) -> tuple[int, float]:
    """Smallest nprobe whose recall@10 (own vectors as queries, self excluded) >= target."""
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(vectors), size=min(_SAMPLE_QUERIES, len(vectors)), replace=False)
    queries = vectors[rows]
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    k = min(11, len(vectors))
    _, truth = exact.search(queries, k)
    del exact
    recall, nprobe = 0.0, ivf.nlist
    for candidate in (p for p in _NPROBES if p < ivf.nlist):
        recall = _recall(ivf, queries, truth, rows, candidate, k)
        if recall >= TARGET_RECALL:
            return candidate, recall
    return nprobe, _recall(ivf, queries, truth, rows, nprobe, k)


def _recall(ivf: faiss.IndexIVFFlat, queries: np.ndarray, truth: np.ndarray,
            rows: np.ndarray, nprobe: int, k: int) -> float:
    ivf.nprobe = nprobe
    _, got = ivf.search(queries, k)
    hits = total = 0
    for want, have, self_row in zip(truth, got, rows, strict=True):
        want_set = {int(x) for x in want if x != self_row}
        hits += len(want_set & {int(x) for x in have})
        total += len(want_set)
    return hits / max(total, 1)


def build_ivf(source: faiss.Index, seed: int = 0) -> tuple[faiss.IndexIVFFlat, AnnInfo]:
    """An IVF-Flat holding the same ids and vectors as `source` (exact or an older IVF).

    The ids are positions during training and tuning, then the stored ids: the IVF is
    trained and tuned on row numbers, emptied, and filled with the real ids."""
    ids, vectors = all_vectors(source)
    n, dim = vectors.shape
    nlist = nlist_for(n)
    rng = np.random.default_rng(seed)
    train = vectors[rng.choice(n, size=min(n, 40 * nlist), replace=False)]
    ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(os.cpu_count() or 1)  # a one-off bulk job: every core
    try:
        ivf.train(train)
        ivf.add(vectors)  # ids = row numbers, so tuning can compare with `exact` rows
        nprobe, recall = _tune_nprobe(ivf, vectors, seed)
        ivf.reset()
        ivf.set_direct_map_type(faiss.DirectMap.Hashtable)  # reconstruct and remove by id
        ivf.add_with_ids(vectors, ids)
    finally:
        faiss.omp_set_num_threads(threads)
    ivf.nprobe = nprobe
    return ivf, AnnInfo(nlist, nprobe, n, recall)


def ivf_ids(ivf: faiss.IndexIVF) -> np.ndarray:
    """Every id stored in the inverted lists."""
    parts = [faiss.rev_swig_ptr(ivf.invlists.get_ids(i), ivf.invlists.list_size(i)).copy()
             for i in range(ivf.nlist) if ivf.invlists.list_size(i)]
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)


def bitmap_selector(allowed: np.ndarray) -> faiss.IDSelectorBitmap:
    """The allowed ids as a bitmap (max id / 8 bytes): one bit test per scanned vector,
    where IDSelectorBatch hashes; the array is kept alive by faiss's wrapper."""
    ids = np.asarray(allowed, dtype=np.int64)
    bits = np.zeros(int(ids.max()) // 8 + 1 if len(ids) else 1, dtype=np.uint8)
    np.bitwise_or.at(bits, ids >> 3, (1 << (ids & 7)).astype(np.uint8))
    return faiss.IDSelectorBitmap(bits)


def ivf_search(ivf: faiss.IndexIVF, queries: np.ndarray, k: int, allowed: np.ndarray | None
               ) -> tuple[np.ndarray, np.ndarray]:
    """Top-k (scores, ids). A filter that keeps at most `EXACT_FILTERED` chunks probes every
    list: exact over what it keeps (the bitmap skips the rest at one bit test each), k filled
    whenever k chunks match; its allowed neighbours often lie in other clusters, where probing
    near the query misses them (bench/scale.py, 100k, 10% kept: recall@10 0.885 probing
    3 x nprobe / share lists). A wider filter probes `FILTER_PROBES x nprobe / share` lists
    (20k, 10% kept: recall@10 0.86 at 1x, 0.97 at 2x, 0.998 at 3x)."""
    if allowed is None:  # a long list (hybrid takes 200) probes more lists than a top 10
        nprobe = min(ivf.nlist, ivf.nprobe * math.ceil(k / 10))
        return ivf.search(queries, k, params=faiss.SearchParametersIVF(nprobe=nprobe))
    share = len(allowed) / max(ivf.ntotal, 1)
    nprobe = min(ivf.nlist, math.ceil(FILTER_PROBES * ivf.nprobe / max(share, 1e-9)))
    if len(allowed) <= EXACT_FILTERED:
        nprobe = ivf.nlist  # every list: exact, at the cost of exact search over `allowed`
    params = faiss.SearchParametersIVF(sel=bitmap_selector(allowed), nprobe=nprobe)
    return ivf.search(queries, k, params=params)
