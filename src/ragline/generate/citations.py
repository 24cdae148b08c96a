"""Check the model's [n] markers against the passages it was given, and attribute the rest.

`supported` uses content-word overlap: the share of the citing sentence's content words
(lower-cased, stop words removed, plural -s folded) that also occur in the cited passage. Why
this check: the answers we ask for are short and extractive (the prompt says to use only facts
stated in the documents), so a sentence drawn from a passage reuses its words, while a claim
the model brought from elsewhere shares few of them. A claim counts as supported when at least
half its content words are in the passage (SUPPORT_THRESHOLD); it cannot detect a negation or
a swapped number inside otherwise copied words, which a reader still has to judge.

Small models (Qwen2.5-0.5B) often write no [n] at all, or cite the wrong number, so after
generation each answer sentence whose markers (if any) back it is left alone, and any other is
attributed to the passage it overlaps most (ties go to the better-ranked passage) when that
overlap reaches the same threshold. A wrong marker the model wrote stays, with
`supported: false`, so the reader sees it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ragline.types import Hit

SUPPORT_THRESHOLD = 0.5

_MARKER = re.compile(r"\s?\[\s*(\d+(?:\s*[,;]\s*\d+)*)\s*\]")
_TOKEN = re.compile(r"\d+(?:[.,:]\d+)*|[^\W\d_]+", re.UNICODE)
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=\S)|\n+")
_STOP_TEXT = """
a an the and or but if then than so of to in on at by for with from into onto over under about
as is are was were be been being am do does did done have has had having it its it's this that
these those there here what which who whom whose when where why how not no nor can could would
should will shall may might must also very just only such each any all some more most other
own same too up down out off again further once i me my we our you your he him his she her they
them their one ones s t according document documents passage passages answer
"""
STOPWORDS = frozenset(_STOP_TEXT.split())


def content_tokens(text: str) -> set[str]:
    """Lower-cased words minus stop words, plural -s folded; numbers kept whole ("3,600")."""
    out = set()
    for tok in _TOKEN.findall(text.lower()):
        if tok in STOPWORDS:
            continue
        if len(tok) > 3 and tok.endswith("s") and not tok.endswith("ss"):
            tok = tok[:-1]
        out.add(tok)
    return out


def overlap(claim: str, passage: str) -> float:
    """Share of the claim's content words found in the passage (0 when it has none)."""
    words = content_tokens(strip_markers(claim))
    if not words:
        return 0.0
    return len(words & content_tokens(passage)) / len(words)


def strip_markers(text: str) -> str:
    """The answer without any [n] markers, e.g. for scoring it against a gold answer."""
    return re.sub(r"[ \t]{2,}", " ", _MARKER.sub("", text)).strip()


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text) if s.strip()]


@dataclass
class Citation:
    """One cited passage: n is its number in the prompt, [1]..[k]."""

    n: int
    chunk_id: str
    source: str
    page: int | None
    text: str
    supported: bool
    by: str = "model"  # "model": the model wrote [n]; "overlap": attributed afterwards
    overlap: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["overlap"] = round(self.overlap, 3)
        return d


@dataclass
class CitationReport:
    answer: str  # the answer with out-of-range markers removed
    citations: list[Citation] = field(default_factory=list)
    dropped: list[int] = field(default_factory=list)  # [n] that pointed to no passage


def drop_invalid(answer: str, k: int) -> tuple[str, list[int]]:
    """Remove the numbers outside 1..k from every marker; return the text and what went."""
    dropped: list[int] = []

    def fix(m: re.Match[str]) -> str:
        nums = [int(x) for x in re.split(r"\s*[,;]\s*", m.group(1))]
        keep = [n for n in nums if 1 <= n <= k]
        dropped.extend(n for n in nums if not 1 <= n <= k)
        if not keep:
            return ""
        lead = m.group(0)[0] if m.group(0)[0].isspace() else ""
        return f"{lead}[{', '.join(map(str, keep))}]"

    return _MARKER.sub(fix, answer), sorted(set(dropped))


def check(answer: str, hits: Sequence[Hit], attribute: bool = True) -> CitationReport:
    """Map [n] to hits, drop invalid ones, mark support, attribute uncited sentences."""
    text, dropped = drop_invalid(answer, len(hits))
    report = CitationReport(answer=text, dropped=dropped)
    best: dict[int, Citation] = {}

    def add(n: int, claim: str, by: str) -> None:
        hit = hits[n - 1]
        score = overlap(claim, hit.text)
        cite = Citation(n=n, chunk_id=hit.chunk_id, source=hit.source, page=hit.page,
                        text=hit.text, supported=score >= SUPPORT_THRESHOLD, by=by,
                        overlap=score)
        old = best.get(n)
        if old is not None:  # cited by several sentences: keep its best-supported claim
            if old.overlap > score:
                cite = old
            cite.by = "model" if "model" in (old.by, by) else "overlap"
        best[n] = cite

    for sentence in sentences(text):
        marked = [int(x) for m in _MARKER.finditer(sentence)
                  for x in re.split(r"\s*[,;]\s*", m.group(1))]
        for n in dict.fromkeys(marked):
            add(n, sentence, "model")
        if not attribute or not hits:
            continue
        if any(overlap(sentence, hits[n - 1].text) >= SUPPORT_THRESHOLD for n in marked):
            continue
        # no marker, or only markers the passage does not back: find the passage that does
        scores = [overlap(sentence, h.text) for h in hits]
        n = max(range(len(hits)), key=lambda i: (scores[i], -i)) + 1
        if scores[n - 1] >= SUPPORT_THRESHOLD:
            add(n, sentence, "overlap")
            after = text[text.find(sentence) + len(sentence):].lstrip()
            if n not in marked and not after.startswith(f"[{n}]"):  # show where it came from
                text = text.replace(sentence, f"{sentence} [{n}]", 1)
    report.answer = text
    report.citations = sorted(best.values(), key=lambda c: c.n)
    return report


def markers(text: str) -> list[int]:
    """The numbers of every [n] marker in the text, in order, without repeats."""
    nums = [int(x) for m in _MARKER.finditer(text) for x in re.split(r"\s*[,;]\s*", m.group(1))]
    return list(dict.fromkeys(nums))


def _words(text: str) -> str:
    return " " + " ".join(re.findall(r"\w+", text.lower())) + " "


def source_for(answer: str, draft: str, hits: Sequence[Hit]) -> int | None:
    """The passage to cite for a short answer cut from a longer draft sentence.

    A short answer ("11", "Kevin Harlan") has too few words for overlap alone to place it, so:
    the passage the model marked (in the draft or the answer) when it holds the answer's words
    verbatim; else the one passage that holds them; among several, the one the draft sentence
    overlaps most; when none holds them, the best overlap of answer + draft, if it is enough.
    """
    k = len(hits)
    marked = [n for n in markers(draft) + markers(answer) if 1 <= n <= k]
    phrase = _words(strip_markers(answer))
    holds = [i + 1 for i, h in enumerate(hits) if phrase.strip() and phrase in _words(h.text)]
    for n in marked:
        if n in holds:
            return n
    if holds:
        return max(holds, key=lambda n: (overlap(draft, hits[n - 1].text), -n))
    claim = f"{strip_markers(answer)} {strip_markers(draft)}"
    scores = [overlap(claim, h.text) for h in hits]
    if scores and max(scores) >= SUPPORT_THRESHOLD:
        return max(range(k), key=lambda i: (scores[i], -i)) + 1
    return marked[0] if marked else None
