"""Shared fixtures: one real embedder per session, and the path of ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]


def shared_data() -> Path:
    """Where ../shared/data is; tests that need it skip when it is absent."""
    return (REPO / ".." / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def embedder():
    """The real default model, loaded once for the whole test session."""
    from ragline.embed import create_embedder

    emb = create_embedder()
    emb.warmup()
    return emb


@pytest.fixture
def docs_sample() -> Path:
    path = shared_data() / "docs-sample"
    if not path.is_dir():
        pytest.skip("../shared/data/docs-sample is not here")
    return path
