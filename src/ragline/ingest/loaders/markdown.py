"""Markdown: paragraphs with the heading path above them; fenced code stays whole.

YAML front matter gives the title and user metadata fields and is not indexed as text.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

from ragline.errors import LoadError
from ragline.ingest.loaders.base import decode_text, read_bytes, refuse_long_lines
from ragline.ingest.metadata import Scalar, clean_user_meta
from ragline.types import Block, Document

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


def split_front_matter(text: str) -> tuple[str | None, str]:
    """Split off a YAML front matter block: `---` on the first line, closed by `---`/`...`.

    Returns (the YAML text or None, the rest). Without a closing line the `---` is ordinary
    Markdown (a rule), so the text is returned unchanged.
    """
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].rstrip() != "---":
        return None, text
    for i in range(1, len(lines)):
        if lines[i].rstrip() in ("---", "..."):
            return "".join(lines[1:i]), "".join(lines[i + 1:])
    return None, text


def parse_front_matter(path: Path, yaml_text: str
                       ) -> tuple[str | None, dict[str, Scalar], list[str]]:
    """Front matter to (title, user fields, warnings); bad YAML costs only a warning."""
    import yaml  # imported here so files without front matter do not pay for it

    try:
        data: Any = yaml.safe_load(yaml_text)
    except (yaml.YAMLError, ValueError, TypeError, RecursionError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        return None, {}, [f"{path}: invalid YAML front matter ignored ({reason})"]
    if data is None:
        return None, {}, []
    if not isinstance(data, dict):
        return None, {}, [f"{path}: front matter is not a mapping of fields, ignored"]
    data = dict(data)
    title: str | None = None
    warnings: list[str] = []
    raw_title = data.pop("title", None)
    if isinstance(raw_title, (str, int, float, dt.date)) and not isinstance(raw_title, bool):
        title = str(raw_title).strip() or None  # `title: 1984` is a title too
    elif raw_title is not None:
        warnings.append(f"{path}: front matter title is not text, ignored")
    meta, meta_warnings = clean_user_meta(data, str(path))
    return title, meta, warnings + meta_warnings


def _heading_path(stack: list[tuple[int, str]]) -> str | None:
    return " > ".join(t for _, t in stack) or None


def parse_markdown(text: str) -> tuple[list[Block], str | None]:
    """Return blocks and the document title (its first level-1 heading)."""
    blocks: list[Block] = []
    stack: list[tuple[int, str]] = []
    title: str | None = None
    buf: list[str] = []
    in_fence = False

    def flush() -> None:
        para = "\n".join(buf).strip()
        buf.clear()
        if para:
            blocks.append(Block(para, heading=_heading_path(stack)))

    for line in text.replace("\r\n", "\n").split("\n"):
        if _FENCE.match(line):
            in_fence = not in_fence
            buf.append(line)
            continue
        m = None if in_fence else _HEADING.match(line)
        if m:
            flush()
            level, heading = len(m.group(1)), m.group(2).strip()
            stack[:] = [(lv, t) for lv, t in stack if lv < level] + [(level, heading)]
            if level == 1 and title is None:
                title = heading
        elif not line.strip() and not in_fence:
            flush()
        else:
            buf.append(line)
    flush()
    return blocks, title


def load_markdown(path: Path) -> list[Document]:
    warnings: list[str] = []
    text = decode_text(path, read_bytes(path), warnings)
    refuse_long_lines(path, text)
    yaml_text, text = split_front_matter(text)
    fm_title: str | None = None
    meta: dict[str, Scalar] = {}
    if yaml_text is not None:
        fm_title, meta, fm_warnings = parse_front_matter(path, yaml_text)
        warnings.extend(fm_warnings)
    blocks, title = parse_markdown(text)
    if not blocks:
        raise LoadError(str(path), "no text outside headings")
    return [Document(str(path), blocks, title=fm_title or title, warnings=warnings, meta=meta)]
