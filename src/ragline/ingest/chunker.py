"""Token-aware chunking with the encoder's own tokenizer.

Chunks are packed from whole sentences up to the token budget, prefer to end at a paragraph
break, may overlap by a few sentences (`--overlap`; none by default), and never cross a page
or a heading, so every chunk has one source, page and heading path. A sentence longer than
the budget is cut by token offsets.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ragline.types import Block, Chunk, Document

if TYPE_CHECKING:
    from tokenizers import Tokenizer

_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=\S)")
_SPECIAL_TOKENS = 2  # [CLS] and [SEP]
_SLACK = 4  # joining sentences can merge or add a token or two


@dataclass(frozen=True)
class ChunkSettings:
    chunk_tokens: int = 256
    #: no overlap: on SciFact (bench/ingest.py --levers) it embedded fewer tokens and scored
    #: higher hybrid nDCG@10 than 32 tokens of overlap
    overlap: int = 0

    def __post_init__(self) -> None:
        if self.chunk_tokens < 16:
            raise ValueError("chunk_tokens must be at least 16")
        if not 0 <= self.overlap < self.chunk_tokens // 2:
            raise ValueError("overlap must be between 0 and half of chunk_tokens")


@dataclass(frozen=True)
class _Unit:
    """A sentence (or a piece of one) with its span in the document text and its size."""

    start: int
    end: int
    tokens: int
    para_start: bool


def _sentences(text: str) -> list[tuple[int, int]]:
    spans, pos = [], 0
    for m in _SENTENCE_END.finditer(text):
        spans.append((pos, m.start()))
        pos = m.end()
    spans.append((pos, len(text)))
    return [(s, e) for s, e in spans if e > s]


class Chunker:
    """Splits documents into chunks sized for the encoder's window."""

    def __init__(self, tokenizer: Tokenizer, settings: ChunkSettings | None = None) -> None:
        self.tokenizer = tokenizer
        self.settings = settings or ChunkSettings()

    def _budget(self, doc: Document, heading: str | None) -> int:
        prefix = "\n".join(p for p in (doc.title, heading) if p)
        used = len(self.tokenizer.encode(prefix, add_special_tokens=False).ids) if prefix else 0
        full = self.settings.chunk_tokens - _SPECIAL_TOKENS - _SLACK
        return max(full - used, full // 2)

    def _units(self, text: str, blocks: list[tuple[int, Block]], budget: int) -> list[_Unit]:
        spans: list[tuple[int, int, bool]] = []
        for offset, block in blocks:
            for i, (s, e) in enumerate(_sentences(block.text)):
                spans.append((offset + s, offset + e, i == 0))
        encodings = self.tokenizer.encode_batch(
            [text[s:e] for s, e, _ in spans], add_special_tokens=False
        )
        units: list[_Unit] = []
        for (s, e, para), enc in zip(spans, encodings, strict=True):
            n = len(enc.ids)
            if n <= budget:
                units.append(_Unit(s, e, n, para))
                continue
            step = budget - self.settings.overlap
            for i in range(0, n, step):
                window = enc.offsets[i : i + budget]
                units.append(_Unit(s + window[0][0], s + window[-1][1], len(window),
                                   para and i == 0))
                if i + budget >= n:
                    break
        return units

    def _pack(self, units: list[_Unit], budget: int) -> Iterator[list[_Unit]]:
        current: list[_Unit] = []
        size = 0
        for idx, unit in enumerate(units):
            fits = size + unit.tokens <= budget
            if current and unit.para_start and size >= budget // 2:
                para_tokens = unit.tokens
                for nxt in units[idx + 1 :]:
                    if nxt.para_start:
                        break
                    para_tokens += nxt.tokens
                fits = fits and size + para_tokens <= budget
            if current and not fits:
                yield current
                tail: list[_Unit] = []
                kept = 0
                for prev in reversed(current):
                    if kept + prev.tokens > self.settings.overlap or len(tail) + 1 >= len(current):
                        break
                    tail.insert(0, prev)
                    kept += prev.tokens
                if kept + unit.tokens > budget:
                    tail, kept = [], 0
                current, size = tail, kept
            current.append(unit)
            size += unit.tokens
        if current:
            yield current

    def chunk(self, doc: Document) -> list[Chunk]:
        """Chunk one document; offsets index into `doc.text`."""
        text = doc.text
        sections: list[list[tuple[int, Block]]] = []
        offset = 0
        for block in doc.blocks:
            key = (block.page, block.heading)
            if not sections or (sections[-1][-1][1].page, sections[-1][-1][1].heading) != key:
                sections.append([])
            sections[-1].append((offset, block))
            offset += len(block.text) + 2
        chunks: list[Chunk] = []
        for section in sections:
            first = section[0][1]
            budget = self._budget(doc, first.heading)
            for group in self._pack(self._units(text, section, budget), budget):
                start, end = group[0].start, group[-1].end
                chunks.append(Chunk(source=doc.source, ordinal=len(chunks), text=text[start:end],
                                    start=start, end=end, page=first.page,
                                    heading=first.heading, title=doc.title))
        return chunks
