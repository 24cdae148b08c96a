"""Open a store by what the user typed: an index folder or a database URL."""

from __future__ import annotations

import os
from pathlib import Path

from ragline.errors import RaglineError
from ragline.store.base import IndexStore
from ragline.store.lexical import Bm25Settings

DEFAULT_INDEX = ".ragline"
_URL_SCHEMES = ("postgresql://", "postgres://", "milvus://")


def default_location() -> str:
    """$RAGLINE_STORE, else $RAGLINE_INDEX (or its config.toml's store), else ./.ragline."""
    return resolve_location()


def is_url(location: str | Path) -> bool:
    return str(location).startswith(_URL_SCHEMES)


def catalog_folder(location: str | Path) -> Path | None:
    """The folder that holds the catalog (a folder, or a milvus:// URL's index=), else None."""
    where = str(location)
    if where.startswith("milvus://"):
        from ragline.store.milvus.url import parse

        return parse(where).folder
    return None if is_url(where) else Path(where)


def configured_store(index: Path) -> str | None:
    """The `[store] url` of `<index>/config.toml`, if any (a folder that points elsewhere)."""
    path = Path(index) / "config.toml"
    if not path.is_file():
        return None
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8")).get("store", {})
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise RaglineError(f"{path}: {e}") from None
    url = table.get("url") if isinstance(table, dict) else None
    if url is not None and not isinstance(url, str):
        raise RaglineError(f"{path}: [store] url must be a string")
    return url


def resolve_location(index: str | Path | None = None, store: str | None = None) -> str:
    """Which store a command uses: --store, else $RAGLINE_STORE, else the index folder's
    config.toml `[store] url`, else the index folder (--index, $RAGLINE_INDEX, ./.ragline).
    A milvus:// URL gets the folder as `?index=`: its catalog and BM25 stay there."""
    folder = Path(index) if index is not None else Path(
        os.environ.get("RAGLINE_INDEX") or DEFAULT_INDEX)
    where = store or os.environ.get("RAGLINE_STORE") or configured_store(folder) or str(folder)
    if where.startswith("milvus://"):  # vectors in Milvus, catalog and BM25 in the folder
        from ragline.store.milvus.url import with_index

        return with_index(where, folder)
    return where


def open_store(location: str | Path | None = None,
               lexical: Bm25Settings | None = None) -> IndexStore:
    """A folder opens (or creates) the local store; `postgresql://...` the PostgreSQL one;
    `milvus://host:port?index=FOLDER` the Milvus one."""
    where = str(location) if location is not None else default_location()
    if where.startswith("milvus://"):
        try:
            from ragline.store.milvus import MilvusStore
        except ImportError as e:
            raise RaglineError(f"the Milvus store needs pymilvus: pip install 'ragline[milvus]' "
                               f"({e.name} is missing)") from None
        return MilvusStore(where, lexical=lexical)
    if is_url(where):
        try:
            from ragline.store.postgres import PostgresStore
        except ImportError as e:
            raise RaglineError(f"the PostgreSQL store needs psycopg and pgvector: "
                               f"pip install 'ragline[postgres]' ({e.name} is missing)") from None
        return PostgresStore(where, lexical=lexical)
    if "://" in where:
        raise RaglineError(f"unknown store {where!r}: use an index folder, postgresql://... "
                           "or milvus://...")
    from ragline.store.local import LocalStore

    return LocalStore(Path(where).expanduser(), lexical=lexical)
