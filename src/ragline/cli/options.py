"""Options shared by the commands, and opening the index they name."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from ragline.errors import RaglineError

if TYPE_CHECKING:
    from ragline.index import Index

IndexOpt = typer.Option(None, "--index", "-i", envvar="RAGLINE_INDEX",
                        help="Index folder [default: ./.ragline, or $RAGLINE_INDEX].")
StoreOpt = typer.Option(None, "--store", envvar="RAGLINE_STORE",
                        help="Where the index lives instead of the folder: a "
                        "postgresql://user@host:port/db URL, or milvus://host:port for the "
                        "vectors (catalog and BM25 stay in --index) (or `[store] url` in the "
                        "index folder's config.toml).")
WhereOpt = typer.Option(None, "--where", "-w",
                        help="Only chunks whose metadata match, e.g. "
                        "'type == \"pdf\" and year >= 2020' (== != > >= < <= in, not in, "
                        "and, or, not, parentheses).")


def open_index(index: Path | None, store: str | None = None, **kwargs: object) -> Index:
    """Open (or create) the index that the flags name."""
    from ragline.index import Index
    from ragline.store.factory import resolve_location

    return Index(resolve_location(index, store), **kwargs)  # type: ignore[arg-type]


def warm_in_background(index: Index) -> None:
    """Load the encoder in a thread while the store loads its files and BM25 runs: a cold
    search overlaps ONNX Runtime's session set-up (~0.3 s) with the rest. A failure is
    raised again by the search's own `warmup`."""
    in_background("ragline-encoder-warmup", index.embedder.warmup)


def in_background(name: str, work: Callable[[], object]) -> None:
    """Run `work` in a thread; what fails there fails again where it is needed. Not a daemon:
    the process waits for it at exit, because a native library (ONNX Runtime, llama.cpp) torn
    down while one of its threads is still loading aborts the process ("terminate called
    without an active exception"), as an `ask` that abstained before needing the model did."""
    import contextlib
    import threading

    def run() -> None:
        with contextlib.suppress(Exception):
            work()

    threading.Thread(target=run, name=name).start()


def open_existing(index: Path | None, store: str | None = None) -> Index:
    """Open an index to read it; a missing folder is an error (wrong folder?), not created."""
    from ragline.index import Index
    from ragline.store.factory import catalog_folder, resolve_location

    where = resolve_location(index, store)
    folder = catalog_folder(where)
    if folder is not None and not (folder / "catalog.sqlite").is_file():
        raise RaglineError(f"no index at {where}: run `ragline ingest PATH --index {where}` "
                           "first")
    return Index(where)
