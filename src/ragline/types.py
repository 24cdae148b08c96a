"""Plain data passed between the pipeline stages."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Block:
    """A run of text from a document with where it came from (page, heading path)."""

    text: str
    page: int | None = None
    heading: str | None = None


@dataclass
class Document:
    """What a loader returns: one logical document (a file, or one record of a JSONL file)."""

    source: str
    blocks: list[Block]
    title: str | None = None
    warnings: list[str] = field(default_factory=list)
    meta: dict[str, str | int | float | bool] = field(default_factory=dict)
    pages: int | None = None

    @property
    def text(self) -> str:
        return "\n\n".join(b.text for b in self.blocks)


def embed_text(title: str | None, heading: str | None, text: str) -> str:
    """The text the encoder sees: title and heading give a chunk its context."""
    parts = [p for p in (title, heading) if p]
    parts.append(text)
    return "\n".join(parts)


@dataclass(frozen=True)
class Chunk:
    """A piece of a document sized to the encoder's window, with its provenance."""

    source: str
    ordinal: int
    text: str
    start: int
    end: int
    page: int | None = None
    heading: str | None = None
    title: str | None = None

    def embed_text(self) -> str:
        return embed_text(self.title, self.heading, self.text)


@dataclass
class Hit:
    """One search result."""

    rank: int
    score: float
    chunk_id: str
    source: str
    page: int | None
    heading: str | None
    text: str
    start: int | None = None
    end: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("start")
        d.pop("end")
        return d


@dataclass
class SearchResult:
    """Hits plus the time each stage took, for `--json` and benchmarks."""

    query: str
    hits: list[Hit]
    timings: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "results": [h.to_dict() for h in self.hits],
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }
