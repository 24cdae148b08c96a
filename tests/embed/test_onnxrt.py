"""The ONNX Runtime encoder gives the reference encoder's vectors, so one index serves both."""

from __future__ import annotations

import numpy as np
import pytest

from ragline.embed import create_embedder
from ragline.embed.factory import resolve_backend
from ragline.embed.onnxrt import OnnxEmbedder
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
