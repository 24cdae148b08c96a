"""Word .docx via python-docx: paragraphs and tables, headings from paragraph styles."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from ragline.errors import LoadError
from ragline.ingest.loaders.base import read_bytes
from ragline.types import Block, Document


def _heading_level(style_name: str) -> int | None:
    if style_name == "Title":
        return 0  # above "Heading 1", so sections keep the title in their heading path
    if style_name.startswith("Heading "):
        tail = style_name.removeprefix("Heading ")
        return int(tail) if tail.isdigit() else None
    return None


def load_docx(path: Path) -> list[Document]:
    import docx  # python-docx; imported here so other formats do not pay for it

    data = read_bytes(path)
    try:
        document = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError) as e:
        raise LoadError(str(path), f"corrupt .docx ({e})") from None
    blocks: list[Block] = []
    stack: list[tuple[int, str]] = []
    title: str | None = None
    for para in document.paragraphs:
        text = para.text.strip()
        if not text:
            continue
        level = _heading_level(para.style.name if para.style is not None else "")
        if level is not None:
            stack[:] = [(lv, t) for lv, t in stack if lv < level] + [(level, text)]
            title = title or text
            continue
        blocks.append(Block(text, heading=" > ".join(t for _, t in stack) or None))
    for table in document.tables:
        for row in table.rows:
            cells = [c.text.strip() for c in row.cells if c.text.strip()]
            if cells:
                blocks.append(Block(" | ".join(cells)))
    if not blocks:
        raise LoadError(str(path), "no text in the document")
    return [Document(str(path), blocks, title=title)]
