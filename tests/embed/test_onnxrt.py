"""The ONNX Runtime encoder gives the reference encoder's vectors, so one index serves both."""

from __future__ import annotations

import numpy as np
import pytest

from ragline.embed import create_embedder
from ragline.embed.factory import resolve_backend
from ragline.embed.onnxrt import OnnxEmbedder
from ragline.embed.tokenized import spread
from ragline.errors import RaglineError

pytest.importorskip("onnxruntime")

TEXTS = [
    "A cynic is a blackguard whose faulty vision sees things as they are.",
    "x",
    "Coffee is best brewed with water just off the boil. " * 40,  # cut at the 256-token window
    "what causes muscle fatigue",
    "Exact inner product over normalised vectors is cosine similarity.",
    "Chunks keep their source path, page, heading path and offsets. " * 6,
    "Ünïcödé, emoji 🐝 and CJK 蜜蜂 go through the same WordPiece vocabulary.",
]


@pytest.fixture(scope="module")
def reference():
    return create_embedder(backend="torch", dtype="fp32")


@pytest.fixture(scope="module")
def light(embedder):
    assert isinstance(embedder, OnnxEmbedder)  # the default where onnxruntime is installed
    return embedder


@pytest.fixture(scope="module")
def fp32_docs():
    return create_embedder(backend="onnx", precision="fp32")


def test_same_vectors_as_the_reference(light, fp32_docs, reference) -> None:
    ref = reference.embed(TEXTS)
    assert len(light.tokenizer.encode(TEXTS[2]).ids) > light.max_tokens
    batched = light.embed_queries(TEXTS)  # padded together in one batch
    single = np.stack([light.embed_query(t) for t in TEXTS])  # one at a time, no padding
    for got in (batched, single, fp32_docs.embed(TEXTS)):
        assert got.dtype == np.float32 and got.shape == (len(TEXTS), 384)
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
        cos = (got * ref).sum(axis=1)
        assert cos.min() >= 0.9999, cos


def test_name_and_shape_match_so_indexes_are_shared(light, reference) -> None:
    assert (light.name, light.dim, light.pooling) == (reference.name, reference.dim,
                                                       reference.pooling)
    assert light.embed([]).shape == (0, 384)


def test_int8_documents_keep_fp32_queries(light, fp32_docs) -> None:
    assert light.precision == "int8"  # the default for documents
    docs, ref = light.embed(TEXTS), fp32_docs.embed(TEXTS)
    cos = (docs * ref).sum(axis=1)
    assert cos.min() > 0.97 and cos.mean() > 0.99  # quantised documents stay close ("x": 0.974)...
    assert not np.allclose(docs, ref, atol=1e-4)  # ...but are not the fp32 vectors
    np.testing.assert_allclose(light.embed_query(TEXTS[3]), fp32_docs.embed_query(TEXTS[3]),
                               atol=1e-6)  # queries run the fp32 export


def test_backend_and_precision_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGLINE_EMBED_BACKEND", "torch")
    assert resolve_backend() == "torch"
    assert resolve_backend("onnx") == "onnx"
    monkeypatch.delenv("RAGLINE_EMBED_BACKEND")
    assert resolve_backend() == "onnx"
    monkeypatch.setenv("RAGLINE_EMBED_PRECISION", "fp32")
    assert create_embedder().precision == "fp32"
    with pytest.raises(RaglineError, match="tensorflow"):
        resolve_backend("tensorflow")
    with pytest.raises(ValueError, match="fp16"):
        create_embedder(backend="onnx", precision="fp16")


def test_streams_embed_the_same_vectors_in_input_order() -> None:
    """Two batches at once (one per core) land each row where one stream puts it."""
    one = create_embedder(backend="onnx", threads=2, streams=1)
    two = create_embedder(backend="onnx", threads=2, streams=2)
    assert (one.streams, two.streams) == (1, 2)
    texts = [f"{i}: {t}" for i, t in enumerate(TEXTS * 12)]  # 84 texts, several batches
    lengths = [len(s) for s in two.token_ids(texts)]
    assert len(two.batches(lengths, two.doc_batch_tokens, 1)) >= 2
    seen: list[int] = []
    got = two.embed(texts, progress=seen.append)
    np.testing.assert_allclose(got, one.embed(texts), atol=1e-6)
    assert sum(seen) == len(texts) == two.embedded_count


def test_spread_gives_every_stream_a_batch() -> None:
    groups = spread([[0, 1, 2, 3, 4], [5]], 3)
    assert len(groups) == 3 and sorted(i for g in groups for i in g) == list(range(6))
    assert spread([[0]], 2) == [[0]]  # a single row cannot be split
    assert spread([[0, 1], [2]], 1) == [[0, 1], [2]]


def test_a_long_document_chunk_runs_alone_so_its_vector_ignores_batch_mates(light) -> None:
    """int8 activations are scaled per batch; a chunk over half the window is its own batch,
    so it gets the same vector whatever else is embedded with it."""
    long = TEXTS[2]  # cut at the window: over half of the 256-token batch budget
    assert 2 * len(light.tokenizer.encode(long).ids) > light.doc_batch_tokens
    alone = light.embed([long])[0]
    together = light.embed(TEXTS + [t.upper() for t in TEXTS])
    np.testing.assert_array_equal(together[2], alone)
    assert light.batches([200, 150, 60, 40, 30], light.doc_batch_tokens, 1) == [
        [0], [1], [2, 3, 4]]
