"""PDF via pypdf: one block per page so every chunk keeps its page number."""

from __future__ import annotations

import io
import logging
from pathlib import Path

from pypdf import PdfReader
from pypdf.errors import FileNotDecryptedError, PdfReadError

from ragline.errors import LoadError
from ragline.ingest.loaders.base import paragraphs, read_bytes
from ragline.types import Block, Document

logging.getLogger("pypdf").setLevel(logging.ERROR)


def _open(path: Path, data: bytes) -> PdfReader:
    try:
        reader = PdfReader(io.BytesIO(data))
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as e:
        raise LoadError(str(path), f"corrupt or truncated PDF ({e})") from None
    if reader.is_encrypted:
        try:
            ok = reader.decrypt("")
        except (FileNotDecryptedError, NotImplementedError, ValueError):
            ok = 0
        if not ok:
            raise LoadError(str(path), "encrypted PDF: a password is needed to read it")
    return reader


def load_pdf(path: Path) -> list[Document]:
    data = read_bytes(path)
    if not data.lstrip().startswith(b"%PDF"):
        raise LoadError(str(path), "not a PDF (no %PDF header)")
    reader = _open(path, data)
    blocks: list[Block] = []
    warnings: list[str] = []
    try:
        pages = list(reader.pages)
    except Exception as e:  # pypdf raises many types on broken page trees
        raise LoadError(str(path), f"corrupt or truncated PDF ({e})") from None
    for number, page in enumerate(pages, start=1):
        try:
            text = page.extract_text() or ""
        except Exception as e:  # one bad page must not lose the others
            warnings.append(f"{path}: page {number} unreadable ({e})")
            continue
        blocks.extend(Block(p, page=number) for p in paragraphs(text))
    if not blocks:
        raise LoadError(str(path), "no extractable text (scanned or image-only PDF?)")
    title = None
    try:
        title = (reader.metadata.title if reader.metadata else None) or None
    except Exception:
        title = None
    return [Document(str(path), blocks, title=title, warnings=warnings, pages=len(pages))]
