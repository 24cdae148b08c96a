"""BM25: same scores as bm25s, incremental updates, and the saved file."""

from __future__ import annotations

from pathlib import Path

import bm25s
import numpy as np
import pytest
import Stemmer

from ragline.store.lexical import Bm25Settings
from ragline.store.local.bm25 import Bm25Index
from ragline.store.local.files import GenerationFiles, lexical_path

CORPUS = [
    "The honeybee colony collapses when mites spread viruses between hives.",
    "Running shoes cushion the runner's heel; runners run faster with lighter shoes.",
    "Coffee extraction depends on water temperature and grind size.",
    "Bees and other pollinators visit flowers; honey bees dance to share directions.",
    "Glaciers are retreating because melting outpaces snowfall in the mountains.",
]


def build(texts: list[str], settings: Bm25Settings | None = None) -> Bm25Index:
    index = Bm25Index(settings)
    index.build(list(range(len(texts))), [f"h{i}" for i in range(len(texts))], texts)
    return index


@pytest.mark.parametrize("query", ["honey bees dancing", "runner shoes", "melting glaciers"])
def test_scores_match_bm25s(query: str) -> None:
    stemmer = Stemmer.Stemmer("english")
    ref = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
    ref.index(bm25s.tokenize(CORPUS, stopwords="en", stemmer=stemmer, show_progress=False),
              show_progress=False)
    q = bm25s.tokenize([query], stopwords="en", stemmer=stemmer, show_progress=False,
                       return_ids=False)[0]
    ours = build(CORPUS).scores(query)
    np.testing.assert_allclose(ours, ref.get_scores(q), rtol=1e-5, atol=1e-6)


def test_stemming_matches_word_forms() -> None:
    ids, scores = build(CORPUS).search("dancing honeybees", k=3)
    assert ids[0] in (0, 3) and set(ids.tolist()) <= {0, 3}
    assert (scores > 0).all()


def test_update_adds_replaces_and_removes() -> None:
    index = build(CORPUS)
    # replace doc 2 (new hash), drop doc 4, add doc 9
    texts = {2: "Tea steeping needs cooler water than coffee.", 9: "Volcanic ash grounds flights."}
    added, removed = index.update([0, 1, 2, 3, 9], ["h0", "h1", "new", "h3", "h9"], None,
                                  fetch=lambda new: [texts[i] for i in new])
    assert (added, removed) == (2, 2)
    assert sorted(index.ids.tolist()) == [0, 1, 2, 3, 9]
    assert index.search("glaciers", 5)[0].tolist() == []
    assert index.search("volcanic ash", 5)[0].tolist() == [9]
    assert index.search("steeping tea", 5)[0].tolist() == [2]
    # the same corpus built from scratch scores the same
    fresh = build([CORPUS[0], CORPUS[1], texts[2], CORPUS[3], texts[9]])
    order = np.argsort(index.ids)
    np.testing.assert_allclose(index.scores("water coffee bees")[order],
                               fresh.scores("water coffee bees"), rtol=1e-6)
    assert index.update([0, 1, 2, 3, 9], ["h0", "h1", "new", "h3", "h9"], None) == (0, 0)


def test_save_load_roundtrip_and_garbage(tmp_path: Path) -> None:
    index = build(CORPUS)
    index.save(lexical_path(tmp_path, 3))
    lexical_path(tmp_path, 2).write_bytes(b"old")
    (tmp_path / "lexical.4.npz.123.tmp").write_bytes(b"partial")
    loaded = Bm25Index.load(lexical_path(tmp_path, 3), Bm25Settings(k1=0.9))
    assert loaded is not None and loaded.settings.k1 == 0.9
    np.testing.assert_allclose(loaded.scores("coffee water"),
                               build(CORPUS, Bm25Settings(k1=0.9)).scores("coffee water"))
    assert Bm25Index.load(lexical_path(tmp_path, 3), Bm25Settings(title_weight=2)) is None
    assert Bm25Index.load(lexical_path(tmp_path, 2), Bm25Settings()) is None
    half = lexical_path(tmp_path, 3).read_bytes()
    lexical_path(tmp_path, 5).write_bytes(half[: len(half) // 2])  # a torn write
    assert Bm25Index.load(lexical_path(tmp_path, 5), Bm25Settings()) is None
    lexical_path(tmp_path, 5).unlink()
    GenerationFiles(tmp_path, Bm25Settings()).collect_garbage(keep=3)
    kept = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("catalog"))
    assert kept == ["lexical.3.npz"]


def test_empty_query_and_empty_index() -> None:
    assert Bm25Index().search("anything", 5)[0].tolist() == []
    assert build(CORPUS).search("the and of", 5)[0].tolist() == []


def test_feedback_expands_with_terms_of_the_feedback_chunks() -> None:
    index = build(CORPUS)
    q = "pollinators"  # only in doc 3
    terms = index.expand(q, feedback=[3], terms=3, weight=0.5)
    vocab = {v: t for t, v in index.vocab.items()}
    assert terms[index.vocab["pollin"]] == 1.0
    extra = {vocab[t]: w for t, w in terms.items() if w != 1.0}
    assert len(extra) == 3 and max(extra.values()) == pytest.approx(0.5)
    assert set(extra) <= set(index.analyzer.terms(CORPUS[3]))
    # the expanded query also finds a document that shares words with the feedback only
    small = build(["Pollinators visit flowers.", "Honey bees dance among flowers.",
                   "Glaciers melt in summer."])
    assert small.search("pollinators", 5)[0].tolist() == [0]
    expanded = small.expand("pollinators", feedback=[0], terms=5, weight=0.5)
    assert small.search(expanded, 5)[0].tolist() == [0, 1]
