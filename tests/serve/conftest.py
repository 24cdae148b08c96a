"""Fixtures for the server tests: a real index of the example corpus, the real SmolLM2 model
(fast), and real servers (uvicorn on a loopback port, in a thread of the test process)."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from serve_helpers import EXAMPLE, Server  # noqa: E402


@pytest.fixture(scope="session")
def llm(smollm2: Path) -> Iterator[Any]:
    """SmolLM2-135M, loaded once for the session and shared by every server."""
    from ragline.generate.base import GenerationOptions
    from ragline.generate.embedded import EmbeddedBackend

    backend = EmbeddedBackend(smollm2, name="smollm2", n_ctx=2048, n_threads=2,
                              options=GenerationOptions(max_tokens=48))
    backend.load()
    yield backend
    backend.close()


@pytest.fixture(scope="session")
def base_index(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Path:
    """An index of the example corpus, built once; tests serve copies of it."""
    from ragline.index import Index

    root = tmp_path_factory.mktemp("serve-base")
    corpus = root / "corpus"
    shutil.copytree(EXAMPLE, corpus)
    folder = root / "index"
    with Index(folder, embedder=embedder) as idx:
        report = idx.add([corpus])
    assert report.added == 4 and not report.failed, report
    return folder


@pytest.fixture(scope="module")
def make_server(base_index: Path, embedder: Any, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[Callable[..., Server]]:
    """make_server(backend, **settings): a started server over a fresh copy of the index."""
    from ragline.index import Index
    from ragline.serve.app import create_app
    from ragline.serve.state import ServeSettings

    servers: list[Server] = []

    def make(backend: Any, **settings: Any) -> Server:
        folder = tmp_path_factory.mktemp("served") / "index"
        shutil.copytree(base_index, folder)
        idx = Index(folder, embedder=embedder)
        app = create_app(idx, backend, ServeSettings(folder=folder, **settings))
        server = Server(app, idx, folder)
        servers.append(server)
        return server.start()

    yield make
    for server in servers:
        server.stop()
        server.index.close()


@pytest.fixture(scope="module")
def server(make_server: Callable[..., Server], llm: Any) -> Server:
    """The default server of a test module: SmolLM2, default settings."""
    return make_server(llm)
