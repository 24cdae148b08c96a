"""Markdown: paragraphs with the heading path above them; fenced code stays whole."""

from __future__ import annotations

import re
from pathlib import Path

from ragline.errors import LoadError
from ragline.ingest.loaders.base import decode_text, read_bytes, refuse_long_lines
from ragline.types import Block, Document

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


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
    blocks, title = parse_markdown(text)
    if not blocks:
        raise LoadError(str(path), "no text outside headings")
    return [Document(str(path), blocks, title=title, warnings=warnings)]
