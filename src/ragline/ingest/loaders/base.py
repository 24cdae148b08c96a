"""Shared helpers for loaders: reading bytes safely and decoding text."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ragline.errors import LoadError
from ragline.types import Document

Loader = Callable[[Path], list[Document]]

_TEXT_CONTROL_OK = {9, 10, 12, 13, 27}

#: a text or Markdown file with a line longer than this is data or minified text, not prose
MAX_LINE_CHARS = 1_000_000


def read_bytes(path: Path) -> bytes:
    """Read a file, turning OS errors into a LoadError that names the file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise LoadError(str(path), "file vanished before it could be read") from None
    except IsADirectoryError:
        raise LoadError(str(path), "is a directory") from None
    except PermissionError:
        raise LoadError(str(path), "permission denied") from None
    except OSError as e:
        raise LoadError(str(path), f"cannot read: {e.strerror or e}") from None
    if not data.strip():
        raise LoadError(str(path), "empty file (no text)")
    return data


def looks_binary(data: bytes) -> bool:
    """NUL bytes or many control characters in the first 8 KiB mean this is not text."""
    head = data[:8192]
    if b"\x00" in head:
        return True
    control = sum(1 for b in head if b < 32 and b not in _TEXT_CONTROL_OK)
    return control > max(8, len(head) // 100)


def decode_text(path: Path, data: bytes, warnings: list[str]) -> str:
    """Decode UTF-8 (with or without BOM); fall back to cp1252/Latin-1 with a warning."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 with a BOM (Windows editors)
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise LoadError(str(path), "invalid UTF-16 text") from None
    if looks_binary(data):
        raise LoadError(str(path), "binary content, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    for enc in ("cp1252", "latin-1"):
        try:
            text = data.decode(enc)
        except UnicodeDecodeError:
            continue
        warnings.append(f"{path}: not valid UTF-8, decoded as {enc}")
        return text
    raise LoadError(str(path), "undecodable text")  # pragma: no cover - latin-1 decodes anything


def refuse_long_lines(path: Path, text: str) -> None:
    """Refuse one-line blobs (minified code, dumps): they are not prose and choke the chunker."""
    if len(text) <= MAX_LINE_CHARS:
        return
    line = max(text.splitlines(), key=len, default="")
    if len(line) > MAX_LINE_CHARS:
        size = len(line.encode("utf-8")) / 1e6
        raise LoadError(str(path), f"a single line of {size:.1f} MB: looks like data or "
                                   "minified text, not prose")


def paragraphs(text: str) -> list[str]:
    """Split on blank lines, normalising line ends; empty paragraphs are dropped."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return [p.strip() for p in text.split("\n\n") if p.strip()]
