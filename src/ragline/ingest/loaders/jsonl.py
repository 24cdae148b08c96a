"""JSON Lines in BEIR form: one document per line with `_id`, `title` and `text`.

An optional `metadata` object per line carries that document's user fields.
"""

from __future__ import annotations

import json
from pathlib import Path

from ragline.errors import LoadError
from ragline.ingest.loaders.base import paragraphs, read_bytes
from ragline.ingest.metadata import clean_user_meta
from ragline.types import Block, Document


def load_jsonl(path: Path) -> list[Document]:
    data = read_bytes(path)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise LoadError(str(path), "JSON Lines must be UTF-8") from None
    docs: list[Document] = []
    seen: set[str] = set()
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise LoadError(str(path), f"line {lineno}: invalid JSON ({e.msg})") from None
        if not isinstance(rec, dict) or "text" not in rec:
            raise LoadError(str(path), f"line {lineno}: expected an object with a 'text' field")
        doc_id = str(rec.get("_id", rec.get("id", lineno)))
        if doc_id in seen:
            raise LoadError(str(path), f"line {lineno}: duplicate _id {doc_id!r}")
        seen.add(doc_id)
        body = str(rec.get("text") or "")
        title = str(rec.get("title") or "").strip() or None
        raw_meta = rec.get("metadata")
        if raw_meta is not None and not isinstance(raw_meta, dict):
            raise LoadError(str(path), f"line {lineno}: 'metadata' must be an object of "
                                       f"fields, not {type(raw_meta).__name__}")
        meta, meta_warnings = clean_user_meta(raw_meta or {}, f"{path}:{lineno}")
        blocks = [Block(p) for p in paragraphs(body)]
        if not blocks and title:
            blocks = [Block(title)]
        if blocks:
            docs.append(Document(f"{path}#{doc_id}", blocks, title=title,
                                 warnings=meta_warnings, meta=meta))
    if not docs:
        raise LoadError(str(path), "no records with text")
    return docs
