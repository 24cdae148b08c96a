"""The PostgreSQL store passes the same conformance suite, against a real server."""

from __future__ import annotations

import pytest

from ragline.store.postgres import PostgresStore
from ragline.testing.store import OpenStore, StoreConformance


class TestPostgresStore(StoreConformance):
    @pytest.fixture
    def open_store(self, postgres_url: str) -> OpenStore:
        return lambda: PostgresStore(postgres_url)


class TestPostgresStoreWithHnsw(StoreConformance):
    """The same suite with the approximate index built from the first commit on."""

    @pytest.fixture
    def open_store(self, postgres_url: str) -> OpenStore:
        return lambda: PostgresStore(postgres_url, hnsw_threshold=1)
