"""The transformer embedder: token-budget batching keeps vectors and order; bf16 stays close."""

from __future__ import annotations

import numpy as np
import pytest

from ragline.embed import create_embedder
from ragline.embed.transformer import resolve_dtype

TEXTS = [
    "A cynic is a blackguard whose faulty vision sees things as they are.",
    "x",
    "Coffee is best brewed with water just off the boil. " * 40,  # past the 256-token window
    "Exact inner product over normalised vectors is cosine similarity.",
    "short",
    "Chunks keep their source path, page, heading path and offsets. " * 6,
]


@pytest.fixture(scope="module")
def fp32():
    return create_embedder(backend="torch", dtype="fp32")


def test_model_loads_lazily(fp32) -> None:
    other = create_embedder(backend="torch", dtype="fp32")
    assert not other.loaded
    assert other.dim == 384 and other.dtype == "fp32"


def test_batched_embed_matches_one_at_a_time(fp32) -> None:
    before = fp32.embedded_count
    batched = fp32.embed(TEXTS)
    assert fp32.embedded_count - before == len(TEXTS)
    single = np.stack([fp32.embed_batch([t])[0] for t in TEXTS])
    assert batched.dtype == np.float32 and batched.shape == (len(TEXTS), 384)
    np.testing.assert_allclose(batched, single, atol=2e-5)
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    assert fp32.embed([]).shape == (0, 384)


def test_small_budget_gives_same_vectors(fp32) -> None:
    small = create_embedder(backend="torch", dtype="fp32", batch_size=1, batch_tokens=256)
    np.testing.assert_allclose(small.embed(TEXTS), fp32.embed(TEXTS), atol=2e-5)


def test_bf16_is_close_to_fp32(fp32) -> None:
    bf16 = create_embedder(backend="torch", dtype="bf16")
    cos = (bf16.embed(TEXTS) * fp32.embed(TEXTS)).sum(axis=1)
    assert cos.min() > 0.999


def test_dtype_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGLINE_EMBED_DTYPE", "fp32")
    assert resolve_dtype(None) == "fp32"
    assert resolve_dtype("bf16") == "bf16"
    monkeypatch.delenv("RAGLINE_EMBED_DTYPE")
    assert resolve_dtype(None) in ("fp32", "bf16")
    with pytest.raises(ValueError, match="fp16"):
        resolve_dtype("fp16")
