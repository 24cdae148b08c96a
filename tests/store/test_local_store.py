"""The local store (SQLite + FAISS + BM25 files) passes the shared conformance suite."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragline.store.local import LocalStore
from ragline.testing.store import OpenStore, StoreConformance


class TestLocalStore(StoreConformance):
    @pytest.fixture
    def open_store(self, tmp_path: Path) -> OpenStore:
        return lambda: LocalStore(tmp_path / "index")


class TestLocalStoreWithAnn(StoreConformance):
    """The same suite with the IVF index built from the first commit on."""

    @pytest.fixture
    def open_store(self, tmp_path: Path) -> OpenStore:
        return lambda: LocalStore(tmp_path / "index", ann_threshold=1)
