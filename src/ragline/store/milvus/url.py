"""`milvus://host:port[/collection][?index=FOLDER]`: where the vectors go and where the catalog
and the lexical side stay. Parsed without importing pymilvus (the factory reads it)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

from ragline.errors import RaglineError

SCHEME = "milvus://"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}\Z")  # Milvus's rule for collection names
DEFAULT_PORT = 19530


@dataclass(frozen=True)
class MilvusLocation:
    host: str
    port: int
    collection: str | None
    folder: Path | None

    def url(self, collection: str | None = None) -> str:
        name = collection or self.collection
        path = f"/{name}" if name else ""
        index = f"?index={quote(str(self.folder))}" if self.folder is not None else ""
        return f"{SCHEME}{self.host}:{self.port}{path}{index}"


def parse(url: str) -> MilvusLocation:
    """Split a milvus:// URL; errors name the part that is wrong."""
    if not url.startswith(SCHEME):
        raise RaglineError(f"not a Milvus URL: {url!r} (milvus://host:port)")
    parts = urlsplit(url)
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise RaglineError(f"{url!r}: the port must be a number") from None
    name = unquote(parts.path.strip("/")) or None
    if name is not None and not _NAME.match(name):
        raise RaglineError(f"{url!r}: a collection name is letters, digits and '_', starting "
                           "with a letter or '_'")
    query = parse_qs(parts.query)
    unknown = set(query) - {"index"}
    if unknown:
        raise RaglineError(f"{url!r}: unknown parameter {sorted(unknown)[0]!r} (only index=)")
    folder = Path(query["index"][-1]) if "index" in query else None
    return MilvusLocation(parts.hostname or "127.0.0.1", port, name, folder)


def with_index(url: str, folder: str | Path) -> str:
    """The URL with `index=` set to `folder` (absolute) unless it names one already."""
    where = parse(url)
    if where.folder is not None:
        return url
    return MilvusLocation(where.host, where.port, where.collection,
                          Path(folder).expanduser().resolve()).url()
