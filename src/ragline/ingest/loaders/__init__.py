"""Loaders turn a file into Documents; pick one by file extension."""

from __future__ import annotations

from pathlib import Path

from ragline.errors import LoadError
from ragline.ingest.loaders.base import Loader
from ragline.ingest.loaders.docx import load_docx
from ragline.ingest.loaders.html import load_html
from ragline.ingest.loaders.jsonl import load_jsonl
from ragline.ingest.loaders.markdown import load_markdown
from ragline.ingest.loaders.pdf import load_pdf
from ragline.ingest.loaders.text import load_text
from ragline.types import Document

LOADERS: dict[str, Loader] = {
    ".txt": load_text,
    ".text": load_text,
    ".rst": load_text,
    ".md": load_markdown,
    ".markdown": load_markdown,
    ".html": load_html,
    ".htm": load_html,
    ".xhtml": load_html,
    ".pdf": load_pdf,
    ".docx": load_docx,
    ".jsonl": load_jsonl,
}


def supported(path: Path) -> bool:
    return path.suffix.lower() in LOADERS


def load(path: Path) -> list[Document]:
    """Load one file; raises LoadError naming the file and the reason."""
    loader = LOADERS.get(path.suffix.lower())
    if loader is None:
        raise LoadError(str(path), f"unsupported file type {path.suffix or '(no extension)'!r}")
    return loader(path)


__all__ = ["LOADERS", "load", "supported", "Document"]
