"""Chunker: token budget, overlap, offsets, page/heading boundaries, long sentences."""

from __future__ import annotations

import pytest

from ragline.ingest.chunker import Chunker, ChunkSettings
from ragline.types import Block, Chunk, Document


@pytest.fixture(scope="module")
def tokenizer(embedder):  # the model's own tokenizer
    return embedder.tokenizer


def _n_tokens(tokenizer, text: str) -> int:
    return len(tokenizer.encode(text).ids)  # with [CLS] and [SEP]


def _doc() -> Document:
    para = " ".join(f"Sentence {i} is a short remark about topic {i % 7} and its details."
                    for i in range(40))
    return Document(
        "mem.txt",
        [Block(para, page=1, heading="Intro"),
         Block("A short second paragraph on page one.", page=1, heading="Intro"),
         Block(para.replace("topic", "theme"), page=2, heading="Intro"),
         Block(para.replace("topic", "subject"), page=2, heading="Intro > Details")],
        title="Remarks",
    )


def _check_offsets(doc: Document, chunks: list[Chunk]) -> None:
    text = doc.text
    for c in chunks:
        assert text[c.start:c.end] == c.text


@pytest.mark.parametrize("size", [32, 64, 256])
def test_chunks_fit_the_window(tokenizer, size: int) -> None:
    doc = _doc()
    chunks = Chunker(tokenizer, ChunkSettings(size, size // 8)).chunk(doc)
    assert len(chunks) > 1
    for c in chunks:
        assert _n_tokens(tokenizer, c.embed_text()) <= size, c.text
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    _check_offsets(doc, chunks)


def test_overlap_between_neighbours(tokenizer) -> None:
    doc = _doc()
    chunks = Chunker(tokenizer, ChunkSettings(64, 24)).chunk(doc)
    same_section = [(a, b) for a, b in zip(chunks, chunks[1:], strict=False)
                    if (a.page, a.heading) == (b.page, b.heading)]
    assert same_section
    for a, b in same_section:
        assert b.start < a.end, "neighbouring chunks share no text"
    no_overlap = Chunker(tokenizer, ChunkSettings(64, 0)).chunk(doc)
    for a, b in zip(no_overlap, no_overlap[1:], strict=False):
        assert b.start >= a.end


def test_no_chunk_crosses_page_or_heading(tokenizer) -> None:
    doc = _doc()
    chunks = Chunker(tokenizer, ChunkSettings(256, 32)).chunk(doc)
    text = doc.text
    spans = []
    pos = 0
    for b in doc.blocks:
        spans.append((pos, pos + len(b.text), b.page, b.heading))
        pos += len(b.text) + 2
    for c in chunks:
        owners = {(p, h) for s, e, p, h in spans if s < c.end and c.start < e}
        assert owners == {(c.page, c.heading)}
    assert {(c.page, c.heading) for c in chunks} == {(1, "Intro"), (2, "Intro"),
                                                    (2, "Intro > Details")}
    assert all(c.title == "Remarks" and c.source == "mem.txt" for c in chunks)
    assert all(c.text == text[c.start:c.end] for c in chunks)  # offsets point into the text


def test_very_long_sentence_is_split(tokenizer) -> None:
    words = " ".join(f"word{i}" for i in range(2000))  # one sentence, thousands of tokens
    doc = Document("long.txt", [Block("Short start. " + words + ". Short end.")])
    chunks = Chunker(tokenizer, ChunkSettings(128, 16)).chunk(doc)
    assert len(chunks) > 10
    for c in chunks:
        assert _n_tokens(tokenizer, c.embed_text()) <= 128
    _check_offsets(doc, chunks)
    covered = set()
    for c in chunks:
        covered.update(range(c.start, c.end))
    assert covered >= set(range(len("Short start. "), len(doc.text) - 1))


def test_long_hyphenated_run_is_split(tokenizer) -> None:
    doc = Document("blob.txt", [Block("-".join(f"part{i}" for i in range(3000)))])
    chunks = Chunker(tokenizer, ChunkSettings(64, 8)).chunk(doc)
    assert len(chunks) > 10
    for c in chunks:
        assert _n_tokens(tokenizer, c.embed_text()) <= 64
    _check_offsets(doc, chunks)


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError):
        ChunkSettings(8, 0)
    with pytest.raises(ValueError):
        ChunkSettings(64, 40)
