"""bench/scale.py at 20k chunks: every backend loads, searches and reports its row; recall is
checked against the bench's own exact search (figures, not timings, are asserted)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import scale  # noqa: E402


def test_exact_top_agrees_with_a_plain_sort() -> None:
    c = scale.corpus(3000, 5, centres=50)
    ids = np.arange(1, 3001) * 7
    want = [set(ids[np.argsort(-(c.vectors @ q))[:10]].tolist()) for q in c.queries]
    assert scale.exact_top(c, ids) == want
    keep = c.buckets == 3
    rows = np.flatnonzero(keep)
    want_f = [set(ids[rows[np.argsort(-(c.vectors[rows] @ q))[:10]]].tolist())
              for q in c.queries]
    assert scale.exact_top(c, ids, where=keep) == want_f
    assert abs(keep.mean() - 0.1) < 0.02 and np.allclose(np.linalg.norm(c.vectors, axis=1), 1)


@pytest.mark.slow
def test_scale_bench_at_20k(tmp_path: Path, milvus_server, postgres_url: str) -> None:
    c = scale.corpus(20_000, 20)
    args = argparse.Namespace(ann_threshold=5_000, pg_url=postgres_url,
                              milvus_url=milvus_server.url)
    rows = {}
    for name in scale.BACKENDS:
        with scale.open_backend(name, tmp_path, args) as (store, probes):
            rows[name] = scale.measure(store, c, 10_000, **probes)
        assert scale.table_row(name, rows[name]).count("|") == scale.HEADER.count("|") // 2
    assert rows["local-exact"]["recall"] == rows["local-exact"]["recall_f"] == 1.0
    assert rows["local-ann"]["index"].startswith("ivf") and rows["local-ann"]["build_s"] > 0
    assert rows["local-ann"]["recall"] >= 0.95 and rows["local-ann"]["recall_f"] >= 0.95
    assert rows["milvus"]["index"].startswith("milvus HNSW") and rows["milvus"]["recall"] > 0.8
    assert rows["postgresql"]["recall_f"] >= 0.95  # the filtered path scans exactly
    # loaded exact, HNSW built once after the load (the build column), ef_search 256
    assert rows["postgresql"]["index"].startswith("hnsw") and rows["postgresql"]["build_s"] > 0
    assert rows["postgresql"]["recall"] > 0.9
    assert all(len(r["dense"]) == 20 and r["disk_mb"] >= 0 for r in rows.values())
