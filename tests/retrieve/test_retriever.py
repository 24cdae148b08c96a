"""Retrieval through Index: BM25 follows add/replace/delete, modes, timings, the CLI flag."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragline.errors import RaglineError
from ragline.index import Index


def lexical_sources(index: Index, query: str) -> list[str]:
    return [Path(h.source).name for h in index.search(query, k=5, mode="lexical").hits]


def test_bm25_follows_add_replace_delete(tmp_path: Path, embedder) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "bees.txt").write_text("Honeybees perform a waggle dance to point at flowers.")
    (docs / "tea.txt").write_text("Green tea is steeped in water below boiling.")
    folder = tmp_path / "idx"
    with Index(folder, embedder=embedder) as index:
        index.add([docs])
        assert lexical_sources(index, "waggle dancing") == ["bees.txt"]
        gen = index.status()["generation"]
        assert (folder / f"lexical.{gen}.npz").is_file()

        # replace: the old words disappear from BM25, the new ones are found
        (docs / "bees.txt").write_text("Bumblebees buzz-pollinate tomato flowers.")
        report = index.add([docs])
        assert report.updated == 1
        assert lexical_sources(index, "waggle") == []
        assert lexical_sources(index, "tomato pollination") == ["bees.txt"]

        # delete
        assert index.remove([docs / "tea.txt"]) == 1
        assert lexical_sources(index, "steeped tea") == []
        with index.store.read() as reader:
            assert len(reader.lexical_search("bumblebees tomato flowers", 100)[0]) == 1
        gen = index.status()["generation"]
        assert sorted(p.name for p in folder.glob("lexical.*")) == [f"lexical.{gen}.npz"]

    # a new process sees the committed state, and rebuilds it if the file is gone
    with Index(folder, embedder=embedder) as reader:
        assert lexical_sources(reader, "tomato") == ["bees.txt"]
    (folder / f"lexical.{gen}.npz").unlink()
    with Index(folder, embedder=embedder) as reader:
        assert lexical_sources(reader, "tomato") == ["bees.txt"]
        assert (folder / f"lexical.{gen}.npz").is_file()


def test_search_modes_and_timings(tmp_path: Path, embedder) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "coffee.md").write_text("# Brewing\n\nBrew coffee with water at 93 degrees Celsius.")
    (docs / "volcano.txt").write_text("Volcanic eruptions inject sulfur into the stratosphere.")
    with Index(tmp_path / "idx", embedder=embedder) as index:
        index.add([docs])
        for mode in ("dense", "lexical", "hybrid"):
            result = index.search("how hot should coffee water be", k=2, mode=mode)
            assert Path(result.hits[0].source).name == "coffee.md", mode
            assert [h.rank for h in result.hits] == list(range(1, len(result.hits) + 1))
        assert {"embed_ms", "search_ms", "lexical_ms"} <= set(result.timings)
        assert index.search("coffee", k=1).hits  # hybrid is the default
        with pytest.raises(ValueError, match="unknown search mode"):
            index.search("coffee", mode="fuzzy")


def test_search_cli_mode_flag(tmp_path: Path, embedder) -> None:
    import json
    import os
    import subprocess
    import sys

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "moss.md").write_text("Sphagnum moss holds twenty times its weight in water.")
    (docs / "salt.txt").write_text("Sea salt is harvested from evaporation ponds.")
    with Index(tmp_path / "idx", embedder=embedder) as index:
        index.add([docs])
    cmd = [sys.executable, "-m", "ragline.cli.app", "search", "sphagnum", "--index",
           str(tmp_path / "idx"), "--json", "-k", "2"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([*cmd, "--mode", "lexical"], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert [Path(r["source"]).name for r in result["results"]] == ["moss.md"]
    assert "lexical_ms" in result["timings"]
    bad = subprocess.run([*cmd, "--mode", "fuzzy"], env=env, capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode != 0 and "--mode" in bad.stderr


def test_search_many_matches_search_one_by_one(tmp_path: Path, embedder) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "coffee.md").write_text("# Brewing\n\nBrew coffee with water at 93 degrees Celsius.")
    (docs / "volcano.txt").write_text("Volcanic eruptions inject sulfur into the stratosphere.")
    (docs / "bees.txt").write_text("Honeybees perform a waggle dance to point at flowers.")
    (docs / "tea.txt").write_text("Green tea is steeped in water below boiling.")
    queries = ["how hot should coffee water be", "what do volcanoes emit",
               "why do bees dance", "steeping green tea"]
    with Index(tmp_path / "idx", embedder=embedder) as index:
        index.add([docs])
        for mode in ("dense", "lexical", "hybrid"):
            many = index.search_many(queries, k=3, mode=mode)
            assert [r.query for r in many] == queries
            for query, got in zip(queries, many, strict=True):
                one = index.search(query, k=3, mode=mode)
                assert [h.chunk_id for h in got.hits] == [h.chunk_id for h in one.hits]
                assert [h.score for h in got.hits] == pytest.approx(
                    [h.score for h in one.hits], abs=1e-4)
                assert set(got.timings) == set(one.timings)
        assert index.search_many([], k=3) == []
        filtered = index.search_many(queries, k=3, where='type == "md"')
        assert filtered[0].hits and all(Path(h.source).name == "coffee.md"
                                        for r in filtered for h in r.hits)
        with pytest.raises(RaglineError, match="empty"):
            index.search_many(["fine", " "])
