"""`ragline serve` (the HTTP API and web page) and `ragline keys create|list|revoke`.

FastAPI and uvicorn are imported inside `serve` only, so the rest of the CLI never pays for them.
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ragline.cli.ask import (
    KeyEnvOpt,
    MaxTokOpt,
    MinScoreOpt,
    ModelOpt,
    ServerModelOpt,
    ThreadsOpt,
    TimeoutOpt,
    UrlOpt,
)
from ragline.cli.options import IndexOpt, StoreOpt, open_index
from ragline.errors import RaglineError

if TYPE_CHECKING:
    from ragline.serve.keys import KeyStore

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

keys_app = typer.Typer(help="API keys for `ragline serve`: create, list, revoke.",
                       no_args_is_help=True)


def index_folder(index: Path | None) -> Path:
    """The folder that holds keys and uploads: --index, $RAGLINE_INDEX or ./.ragline, also
    when the index itself lives in a database (--store)."""
    from ragline.store.factory import DEFAULT_INDEX

    return Path(index or os.environ.get("RAGLINE_INDEX") or DEFAULT_INDEX).expanduser()


def _keystore(folder: Path) -> KeyStore:
    from ragline.serve.keys import KeyStore  # hashlib, secrets, sqlite3: not for `--help`

    return KeyStore(folder)


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on; anything but "
                             "loopback needs an API key to exist."),
    port: int = typer.Option(8000, "--port", "-p", min=0, max=65535, help="TCP port."),
    index: Path | None = IndexOpt,
    store: str | None = StoreOpt,
    public_read: bool = typer.Option(False, "--public-read", help="Let anyone search and ask "
                                     "without a key (uploads and deletes still need one)."),
    max_queue: int = typer.Option(8, "--max-queue", min=0, help="Answers that may wait for "
                                  "the model; more are refused with 503 and Retry-After."),
    search_workers: int | None = typer.Option(
        None, "--search-workers", min=1, help="Searches that may run at once (default: the "
        "cores); one fewer while the model generates, so answers are not starved."),
    max_upload_mb: int = typer.Option(50, "--max-upload-mb", min=1, help="Largest upload "
                                      "(all files of one request together), in MB."),
    k: int | None = typer.Option(None, "-k", "--top-k", min=1, max=100,
                                 help="Passages given to the model (default: 5)."),
    llm_url: str | None = UrlOpt,
    llm_model: str | None = ServerModelOpt,
    api_key_env: str | None = KeyEnvOpt,
    model: str | None = ModelOpt,
    llm_timeout: float | None = TimeoutOpt,
    max_tokens: int | None = MaxTokOpt,
    min_score: float | None = MinScoreOpt,
    threads: int | None = ThreadsOpt,
) -> None:
    """Serve the index over HTTP: JSON API, OpenAI-compatible routes, web page.

    API docs at /docs, the page at /; the models load once and stay in memory."""
    folder = index_folder(index)
    keys = _keystore(folder)
    have_keys = keys.count() > 0
    if not is_loopback(host) and not have_keys:
        raise RaglineError(f"refusing to serve on {host} with no API keys: create one first "
                           f"with `ragline keys create --scope read --index {folder}`")
    import uvicorn

    from ragline.generate.factory import create_backend, load_config, pair_models
    from ragline.serve.app import create_app
    from ragline.serve.state import ServeSettings

    idx = open_index(index, store)
    try:
        cfg = load_config(folder, k=k, url=llm_url, model=llm_model, api_key_env=api_key_env,
                          gguf=model, timeout=llm_timeout, max_tokens=max_tokens,
                          min_score=min_score, threads=threads)
        backend = create_backend(cfg)
    except BaseException:
        idx.close()
        raise
    try:
        idx.embedder.warmup()
        for pair_model in pair_models():
            pair_model.warmup()  # the first question should not pay for it
        load = getattr(backend, "load", None)
        if load is not None:
            load()
        settings = ServeSettings(folder=folder, public_read=public_read, max_queue=max_queue,
                                 search_workers=search_workers, max_upload_mb=max_upload_mb,
                                 k=cfg.k, min_score=cfg.min_score,
                                 min_confidence=cfg.min_confidence, sentences=cfg.sentences)
        app = create_app(idx, backend, settings)
        shown = f"[{host}]" if ":" in host else host
        err_console.print(f"ragline: serving {escape(idx.location)} with {escape(backend.name)} "
                          f"at http://{shown}:{port}/ (API docs: /docs)", soft_wrap=True)
        if not have_keys and not public_read:
            err_console.print("[yellow]note:[/] no API keys yet: create one with `ragline keys "
                              f"create --scope read --index {escape(str(folder))}`, or serve "
                              "with --public-read", soft_wrap=True)
        debug = os.environ.get("RAGLINE_DEBUG") == "1"
        config = uvicorn.Config(app, host=host, port=port, log_level="info" if debug else
                                "warning", access_log=debug, timeout_graceful_shutdown=5)
        _server_class()(config).run()
    finally:
        backend.close()
        idx.close()


def _server_class() -> type:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server, except that SIGINT/SIGTERM end `run()` normally (uvicorn raises
        the signal again once it has shut down, which would skip closing the model)."""

        def handle_exit(self, sig: int, frame: object) -> None:
            if self.should_exit and sig == signal.SIGINT:
                self.force_exit = True  # a second Ctrl-C: do not wait for open streams
            self.should_exit = True

    return Server


@keys_app.command("create")
def keys_create(
    scope: str = typer.Option(..., "--scope", help="read (search, ask) or write (also upload "
                              "and delete documents)."),
    name: str | None = typer.Option(None, "--name", help="A label to tell keys apart."),
    index: Path | None = IndexOpt,
) -> None:
    """Create a key and print it once: it is stored only as a hash."""
    from ragline.serve.keys import SCOPES

    if scope not in SCOPES:
        raise RaglineError(f"--scope must be read or write, not {scope!r}")
    info, key = _keystore(index_folder(index)).create(scope, name)
    print(key)
    err_console.print(f"created {info.scope} key {info.id}"
                      f"{f' ({escape(info.name)})' if info.name else ''}: copy it now, it is "
                      "not shown again")


@keys_app.command("list")
def keys_list(
    index: Path | None = IndexOpt,
    as_json: bool = typer.Option(False, "--json", help="Print the keys as JSON."),
) -> None:
    """The keys (id, name, scope, created), never the keys themselves."""
    keys = _keystore(index_folder(index)).list()
    if as_json:
        print(json.dumps([k.to_dict() for k in keys], indent=2))
        return
    if not keys:
        err_console.print("no keys: create one with `ragline keys create --scope read`")
        return
    table = Table("id", "name", "scope", "created")
    for k in keys:
        table.add_row(k.id, escape(k.name), k.scope, k.created)
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: str = typer.Argument(..., metavar="ID", help="The key's id (from `keys list`)."),
    index: Path | None = IndexOpt,
) -> None:
    """Revoke a key; a running server refuses it from the next request on."""
    if not _keystore(index_folder(index)).revoke(key_id):
        raise RaglineError(f"no key with id {key_id!r}")
    err_console.print(f"revoked key {key_id}")


def register(app: typer.Typer) -> None:
    app.command()(serve)
    app.add_typer(keys_app, name="keys")
