"""The Python API end to end: ingest real files, search, locking, status."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers_core import assert_consistent, counts, make_docx, make_pdf

from ragline import Hit, Index, RaglineError
from ragline.errors import IndexLockedError

DOCS = {
    "coffee.md": "# Coffee\n\n## Brewing\n\nWater just off the boil, around 93 degrees Celsius, "
                 "extracts coffee evenly without scorching the grounds.\n\n## Storage\n\n"
                 "Keep beans in an airtight jar away from light.\n",
    "bees.html": "<html><body><main><h1>Bees</h1><p>A worker honeybee visits hundreds of "
                 "flowers on a single foraging trip and returns with nectar.</p></main>"
                 "</body></html>",
    "press.txt": "Gutenberg's movable type printing press made books cheap enough for ordinary "
                 "readers across fifteenth century Europe.\n",
}
PDF_PAGES = [["Volcanic ash can ground aircraft for days."],
             ["Lighthouse keepers once trimmed the lamp wicks every night."]]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    for name, text in DOCS.items():
        (root / name).write_text(text)
    (root / "atlas.pdf").write_bytes(make_pdf(PDF_PAGES))
    make_docx(root / "garden.docx")
    return root


@pytest.fixture(scope="module")
def index(corpus: Path, tmp_path_factory: pytest.TempPathFactory, embedder) -> Index:
    idx = Index(tmp_path_factory.mktemp("idx"), embedder=embedder)
    report = idx.add([corpus])
    assert report.added == 5 and not report.failed
    yield idx
    idx.close()


@pytest.mark.parametrize("sentence, source, page, heading", [
    ("Water just off the boil, around 93 degrees Celsius, extracts coffee evenly without "
     "scorching the grounds.", "coffee.md", None, "Coffee > Brewing"),
    ("A worker honeybee visits hundreds of flowers on a single foraging trip and returns "
     "with nectar.", "bees.html", None, "Bees"),
    ("Lighthouse keepers once trimmed the lamp wicks every night.", "atlas.pdf", 2, None),
    ("Slugs eat lettuce at night after rain.", "garden.docx", None,
     "Garden Handbook > Pests"),
])
def test_copied_sentence_finds_its_document_first(index: Index, corpus: Path, sentence: str,
                                                  source: str, page: int | None,
                                                  heading: str | None) -> None:
    for result in (index.search(sentence, k=3), index.search(sentence, k=3, mode="dense")):
        top = result.hits[0]
        assert isinstance(top, Hit)
        assert top.source == str(corpus / source)
        assert top.page == page and top.heading == heading
        assert sentence in top.text
        assert top.rank == 1 and top.score >= result.hits[1].score
    assert top.score > 0.7  # dense scores are cosine similarities


def test_result_schema(index: Index) -> None:
    d = index.search("printing press", k=2).to_dict()
    assert set(d) == {"query", "results", "timings"}
    assert {"embed_ms", "search_ms"} <= set(d["timings"])
    assert [r["rank"] for r in d["results"]] == [1, 2]
    for r in d["results"]:
        assert set(r) == {"rank", "score", "chunk_id", "source", "page", "heading", "text",
                          "metadata"}
        assert r["metadata"]["source"] == r["source"] and r["metadata"]["type"] in (
            "md", "html", "txt", "pdf", "docx")
        assert isinstance(r["score"], float) and isinstance(r["chunk_id"], str)


def test_k_larger_than_index_and_empty_query(index: Index) -> None:
    n = counts(index)[1]
    assert len(index.search("anything", k=n + 50).hits) == n
    with pytest.raises(RaglineError, match="empty"):
        index.search("   ")


def test_status(index: Index) -> None:
    s = index.status()
    assert s["documents"] == 5 and s["chunks"] == s["vectors"] > 0
    assert s["model"] == "sentence-transformers/all-MiniLM-L6-v2" and s["dim"] == 384
    assert s["pooling"] == "mean" and s["generation"] >= 1
    assert_consistent(index)


def test_second_writer_is_refused(index: Index, corpus: Path, embedder) -> None:
    other = Index(index.path, embedder=embedder)
    try:
        with index.store.write():
            with pytest.raises(IndexLockedError, match="another process"):
                other.add([corpus])
            with pytest.raises(IndexLockedError):
                other.remove([corpus / "press.txt"])
            # readers are not blocked by a writer
            assert other.search("printing press", k=1).hits
        assert other.add([corpus]).unchanged == 5  # the lock is released afterwards
    finally:
        other.close()


def test_reader_sees_writer_commits(index: Index, corpus: Path, tmp_path: Path,
                                    embedder) -> None:
    extra = tmp_path / "extra.txt"
    extra.write_text("Narwhal tusks are long spiral teeth that sense salt in the water.")
    with Index(index.path, embedder=embedder) as reader:
        assert reader.search("narwhal tusk", k=1).hits[0].source != str(extra)
        index.add([extra])
        assert reader.search("narwhal tusk", k=1).hits[0].source == str(extra)
    assert index.remove([extra]) == 1
