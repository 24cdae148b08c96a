"""Document metadata: built-in fields every document gets, plus typed user fields.

User fields come from the file itself (JSONL `metadata`, Markdown front matter) and from the
CLI's `--meta key=value`. They are flat scalars so the store can filter on them; built-in
names are reserved so a user field can never disguise where a chunk came from.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ragline.errors import RaglineError
from ragline.store.base import Scalar
from ragline.store.filters import FIELD_NAME
from ragline.types import Document

BUILTIN_FIELDS = ("source", "type", "title", "size", "modified", "pages")
BUILTIN_TYPES = {"source": "string", "type": "string", "title": "string", "size": "number",
                 "modified": "string", "pages": "number"}

#: format names for suffixes that share a loader; any other suffix names itself
_FORMATS = {".pdf": "pdf", ".md": "md", ".markdown": "md", ".txt": "txt", ".html": "html",
            ".htm": "html", ".docx": "docx", ".jsonl": "jsonl"}


class MetadataError(RaglineError):
    """A `--meta` item the user must fix before anything is indexed."""


def parse_value(text: str) -> Scalar:
    """Type a CLI value as a JSON scalar would be, so `year=2024` filters as a number.

    Quoting (`"2024"`) keeps a string; anything that is not a finite JSON scalar (null,
    lists, objects, NaN, plain words) stays the raw text.
    """
    try:
        v = json.loads(text)
    except ValueError:
        return text
    if isinstance(v, float) and not math.isfinite(v):
        return text
    if isinstance(v, (str, int, float, bool)):
        return v
    return text


def _check_name(name: str) -> str | None:
    """Why a name cannot be a user field, or None when it can."""
    if not FIELD_NAME.match(name):
        return "field names are letters, digits and _, not starting with a digit"
    if name in BUILTIN_FIELDS:
        return f"{name!r} is a built-in field and cannot be set by the user"
    return None


def parse_assignments(items: Sequence[str]) -> dict[str, Scalar]:
    """Parse repeated `--meta key=value`; a repeated key keeps its last value."""
    out: dict[str, Scalar] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise MetadataError(f"--meta {item!r}: expected key=value")
        why = _check_name(name)
        if why:
            raise MetadataError(f"--meta {item!r}: bad field name {name!r}: {why}")
        out[name] = parse_value(value)
    return out


def clean_user_meta(raw: Mapping[str, Any], where: str) -> tuple[dict[str, Scalar], list[str]]:
    """Keep the flat scalar fields of metadata found in a file; warn about the rest.

    A file is not rejected for odd metadata: the field is dropped and the warning says which
    file (and line) and which field, so the user can fix it. Dates become ISO 8601 strings
    (YAML parses `2024-05-01` as a date); None means "no value" and is dropped silently.
    """
    clean: dict[str, Scalar] = {}
    warnings: list[str] = []
    for key, value in raw.items():
        why = _check_name(key) if isinstance(key, str) else "field names must be text"
        if why is None:
            if value is None:
                continue
            if isinstance(value, dt.date):  # datetime too
                value = value.isoformat()
            if isinstance(value, float) and not math.isfinite(value):
                why = "not a finite number"
            elif isinstance(value, (str, int, float, bool)):
                clean[key] = value
                continue
            elif isinstance(value, Mapping):
                why = "a mapping is not a flat value (use text, a number or true/false)"
            elif isinstance(value, (list, tuple, set)):
                why = "a list is not a flat value (use text, a number or true/false)"
            else:
                why = f"unsupported value type {type(value).__name__}"
        warnings.append(f"{where}: metadata field {key!r} dropped: {why}")
    return clean, warnings


def format_name(path: Path) -> str:
    """The `type` field: one name per format, whichever of its suffixes the file uses."""
    suffix = path.suffix.lower()
    return _FORMATS.get(suffix, suffix.removeprefix("."))


def iso_utc(mtime: float) -> str:
    """A file time as ISO 8601 UTC to the second, e.g. `2024-05-01T12:00:00Z`."""
    return dt.datetime.fromtimestamp(mtime, tz=dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def builtin_meta(path: Path, doc: Document, size: int, mtime: float) -> dict[str, Scalar]:
    """The built-in fields; title and pages are left out when the document has none."""
    meta: dict[str, Scalar] = {"source": doc.source, "type": format_name(path)}
    if doc.title is not None:
        meta["title"] = doc.title
    meta["size"] = int(size)
    meta["modified"] = iso_utc(mtime)
    if doc.pages is not None:
        meta["pages"] = int(doc.pages)
    return meta


def document_meta(builtin: Mapping[str, Scalar], from_file: Mapping[str, Scalar],
                  from_cli: Mapping[str, Scalar]) -> dict[str, Scalar]:
    """Merge: built-ins always win, then `--meta` (so a user can correct a file), then the file.

    Built-in names in the user dicts are dropped even where the built-in is absent (a
    document without a title), so no user field can pose as a built-in.
    """
    merged: dict[str, Scalar] = dict(builtin)
    for user in (from_file, from_cli):
        for key, value in user.items():
            if key not in BUILTIN_FIELDS:
                merged[key] = value
    return merged
