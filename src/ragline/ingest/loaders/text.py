"""Plain text: paragraphs split on blank lines."""

from __future__ import annotations

from pathlib import Path

from ragline.errors import LoadError
from ragline.ingest.loaders.base import decode_text, paragraphs, read_bytes, refuse_long_lines
from ragline.types import Block, Document


def load_text(path: Path) -> list[Document]:
    warnings: list[str] = []
    text = decode_text(path, read_bytes(path), warnings)
    refuse_long_lines(path, text)
    blocks = [Block(p) for p in paragraphs(text)]
    if not blocks:
        raise LoadError(str(path), "empty file (no text)")
    return [Document(str(path), blocks, warnings=warnings)]
