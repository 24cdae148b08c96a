"""Incremental ingest: unchanged files cost nothing, edits touch only their chunks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers_core import (
    all_ids,
    assert_consistent,
    chunk_rows,
    counts,
    document,
    vector_ids_of,
    vectors_of,
    write_corpus,
)

from ragline.embed.base import BatchEmbedder
from ragline.embed.factory import create_embedder
from ragline.errors import IndexMismatchError
from ragline.index import Index
from ragline.ingest.progress import IngestProgress


def test_reingest_untouched_embeds_nothing(tmp_path: Path, embedder) -> None:
    files = write_corpus(tmp_path / "docs", 5)
    with Index(tmp_path / "idx", embedder=embedder) as idx:
        first = idx.add([tmp_path / "docs"])
        assert first.added == 5 and first.chunks_embedded > 0
        before = embedder.embedded_count
        rows = chunk_rows(idx)
        again = idx.add([tmp_path / "docs"])
        assert embedder.embedded_count == before
        assert (again.unchanged, again.added, again.updated) == (len(files), 0, 0)
        assert again.chunks_written == again.chunks_embedded == 0
        assert chunk_rows(idx) == rows
        assert_consistent(idx)


def test_unchanged_reingest_does_not_load_the_model(tmp_path: Path, embedder) -> None:
    write_corpus(tmp_path / "docs", 3)
    with Index(tmp_path / "idx", embedder=embedder) as idx:
        idx.add([tmp_path / "docs"])
    with Index(tmp_path / "idx") as idx:  # its own embedder, created from the index's meta
        assert not idx.embedder.loaded
        report = idx.add([tmp_path / "docs"])
        assert report.unchanged == 3
        assert not idx.embedder.loaded  # skipped by content hash: weights never read


def test_edit_one_file_changes_only_its_chunks(tmp_path: Path, embedder) -> None:
    docs = tmp_path / "docs"
    files = write_corpus(docs, 4, sentences=30)  # several chunks per file at 64 tokens
    with Index(tmp_path / "idx", embedder=embedder, chunk_tokens=64, overlap=8) as idx:
        idx.add([docs])
        rows = chunk_rows(idx)
        target = files[2]
        assert len(rows[str(target)]) >= 4
        others = {s: ids for s, ids in rows.items() if s != str(target)}
        other_vectors = {s: vectors_of(idx, vector_ids_of(idx, s)) for s in others}
        text = target.read_text()
        target.write_text(text.replace("A closing remark", "A brand new closing remark"))
        before = embedder.embedded_count
        report = idx.add([docs])
        assert (report.updated, report.unchanged, report.added) == (1, 3, 0)
        new_rows = chunk_rows(idx)
        for s, ids in others.items():
            assert new_rows[s] == ids
            np.testing.assert_array_equal(vectors_of(idx, vector_ids_of(idx, s)),
                                          other_vectors[s])
        changed = set(new_rows[str(target)]) - set(rows[str(target)])
        assert changed, "the edited file kept all its chunks"
        embedded = embedder.embedded_count - before
        assert embedded == report.chunks_embedded == len(changed)
        assert embedded < len(new_rows[str(target)])  # unchanged text reused its vectors
        assert report.chunks_reused == len(new_rows[str(target)]) - embedded
        hit = idx.search("A brand new closing remark", k=1).hits[0]
        assert hit.source == str(target)
        assert_consistent(idx)


def test_prune_and_remove_delete_from_catalog_and_faiss(tmp_path: Path, embedder) -> None:
    docs = tmp_path / "docs"
    files = write_corpus(docs, 4)
    with Index(tmp_path / "idx", embedder=embedder) as idx:
        idx.add([docs])
        gone_ids = vector_ids_of(idx, str(files[1]))
        assert len(gone_ids)
        files[1].unlink()
        report = idx.add([docs])  # no prune: the file is still indexed
        assert report.removed == 0 and str(files[1]) in chunk_rows(idx)
        report = idx.add([docs], prune=True)
        assert report.removed == 1
        assert str(files[1]) not in chunk_rows(idx)
        assert not np.isin(gone_ids, all_ids(idx)).any()
        assert_consistent(idx)
        gone_ids = vector_ids_of(idx, str(files[3]))
        assert idx.remove([files[3]]) == 1
        assert document(idx, str(files[3])) is None
        assert not np.isin(gone_ids, all_ids(idx)).any()
        assert_consistent(idx)
        assert idx.remove([tmp_path / "never-indexed.txt"]) == 0
    with Index(tmp_path / "idx", embedder=embedder) as idx:  # durable after reopening
        assert set(chunk_rows(idx)) == {str(files[0]), str(files[2])}
        assert_consistent(idx)
        assert idx.remove([docs]) == 2  # a folder removes everything under it
        assert counts(idx) == (0, 0) and len(all_ids(idx)) == 0


def test_changing_chunk_tokens_rechunks(tmp_path: Path, embedder) -> None:
    write_corpus(tmp_path / "docs", 2, sentences=30)
    with Index(tmp_path / "idx", embedder=embedder) as idx:
        idx.add([tmp_path / "docs"])
        n_default = counts(idx)[1]
    with Index(tmp_path / "idx", embedder=embedder, chunk_tokens=64, overlap=8) as idx:
        report = idx.add([tmp_path / "docs"])
        assert report.updated == 2 and report.unchanged == 0
        assert counts(idx)[1] > n_default
        assert_consistent(idx)
    with Index(tmp_path / "idx", embedder=embedder) as idx:  # the setting is remembered
        assert idx.settings.chunk_tokens == 64
        assert idx.add([tmp_path / "docs"]).unchanged == 2


class TinyEmbedder(BatchEmbedder):
    """A real (if crude) 8-dimensional embedder: character-class counts, L2-normalised."""

    name = "tiny-char-counts"
    dim = 8

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, t in enumerate(texts):
            for ch in t:
                out[row, ord(ch) % self.dim] += 1
        out += 1e-3
        return out / np.linalg.norm(out, axis=1, keepdims=True)


@pytest.fixture
def built_index(tmp_path: Path, embedder) -> Path:
    write_corpus(tmp_path / "docs", 2)
    with Index(tmp_path / "idx", embedder=embedder) as idx:
        idx.add([tmp_path / "docs"])
    return tmp_path / "idx"


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())
            if p.is_file() and not p.name.endswith(("-wal", "-shm"))}


def test_other_model_is_refused_before_writing(built_index: Path, tmp_path: Path,
                                               embedder) -> None:
    before = _snapshot(built_index)
    tiny = TinyEmbedder()
    with pytest.raises(IndexMismatchError, match="tiny-char-counts"):
        Index(built_index, embedder=tiny)
    copy = tmp_path / "my-minilm-copy"  # the same weights under another name
    copy.mkdir()
    for f in embedder.path.iterdir():
        (copy / f.name).symlink_to(f)
    other = create_embedder(str(copy))
    with pytest.raises(IndexMismatchError, match="my-minilm-copy"):
        Index(built_index, embedder=other)
    assert not getattr(other, "loaded", False)  # refused without loading the weights
    tiny.name = embedder.name  # same name, wrong dimension
    with pytest.raises(IndexMismatchError, match="8"):
        Index(built_index, embedder=tiny)
    assert _snapshot(built_index) == before
    assert tiny.embedded_count == 0
    with Index(built_index, embedder=embedder) as idx:  # still fine with the right model
        assert counts(idx)[0] == 2
        assert_consistent(idx)


def test_tiny_embedder_builds_its_own_index(tmp_path: Path, embedder) -> None:
    """The embedder seam: another model with another dimension works in its own index."""
    write_corpus(tmp_path / "docs", 2)
    tiny = TinyEmbedder()
    tiny.tokenizer = embedder.tokenizer  # type: ignore[attr-defined]
    with Index(tmp_path / "idx", embedder=tiny) as idx:
        report = idx.add([tmp_path / "docs"])
        assert report.added == 2 and tiny.embedded_count == report.chunks_embedded
        assert idx.status()["dim"] == 8 and idx.status()["model"] == "tiny-char-counts"
        assert_consistent(idx)


class _StopAfter(IngestProgress):
    """Raises after `n` embedded batches: an ingest that dies halfway, without a subprocess."""

    def __init__(self, n: int) -> None:
        self.left = n

    def embedded(self, n: int) -> None:
        self.left -= 1
        if self.left == 0:
            raise KeyboardInterrupt


def test_big_jsonl_resumes_from_its_last_checkpoint(tmp_path: Path, embedder) -> None:
    import json

    corpus = tmp_path / "corpus.jsonl"
    with corpus.open("w") as fh:
        for i in range(60):
            fh.write(json.dumps({"_id": f"d{i}", "title": f"Record {i}",
                                 "text": f"Record number {i} talks about topic {i * 7}."}) + "\n")
    with Index(tmp_path / "idx", embedder=embedder) as idx:
        with pytest.raises(KeyboardInterrupt):
            idx.add([corpus], progress=_StopAfter(4), flush_chunks=16, checkpoint_seconds=0)
        docs, chunks = counts(idx)
        assert 0 < chunks < 60  # the slices committed before the stop are kept
        assert document(idx, str(corpus)).hash.startswith("partial:")
        assert_consistent(idx)
        before = embedder.embedded_count
        report = idx.add([corpus])
        assert report.chunks_reused >= chunks  # committed vectors are not embedded again
        assert embedder.embedded_count - before == 60 - report.chunks_reused
        assert counts(idx) == (1, 60)
        assert not document(idx, str(corpus)).hash.startswith("partial:")
        assert_consistent(idx)
