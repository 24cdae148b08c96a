"""The Milvus store passes the same conformance suite, against a real Milvus standalone."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragline.store.milvus import MilvusStore
from ragline.testing.milvus import MilvusTestServer
from ragline.testing.store import OpenStore, StoreConformance


class TestMilvusStore(StoreConformance):
    @pytest.fixture
    def open_store(self, milvus_server: MilvusTestServer, tmp_path: Path) -> OpenStore:
        return lambda: MilvusStore(milvus_server.url, tmp_path / "index")
