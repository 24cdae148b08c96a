"""The short-answer turn: its prompt, and which passage a short answer cites. No model."""

from __future__ import annotations

from helpers_core import make_hits

from ragline.generate.answer import _cut_from, _unprefix
from ragline.generate.citations import markers, source_for
from ragline.generate.prompt import CONCISE_PREFILL, build_messages, concise_messages

TEXTS = [
    "The Broncos scored 24 points and had 11 first downs in Super Bowl 50.",
    "The Panthers had 21 first downs; the Broncos defence allowed 11 of them in the first half.",
    "Kevin Harlan called the game on radio, with Boomer Esiason as analyst.",
]
HITS = make_hits(TEXTS)


def test_concise_turn_follows_the_draft_and_opens_the_reply() -> None:
    base = build_messages("How many first downs did the Broncos have?", HITS)
    msgs = concise_messages(base, "The Broncos had 11 first downs. [1]")
    assert msgs[: len(base)] == base  # same prefix: served from the KV cache
    assert msgs[-3]["role"] == "assistant" and msgs[-1] == {"role": "assistant",
                                                            "content": CONCISE_PREFILL}


def test_short_answer_cites_the_marked_passage_that_holds_it() -> None:
    assert source_for("11", "The Broncos had 11 first downs in Super Bowl 50. [2]", HITS) == 2
    # marked [3] does not hold "11": the passage the draft overlaps most among those that do
    assert source_for("11", "The Broncos had 11 first downs in Super Bowl 50. [3]", HITS) == 1
    assert source_for("Kevin Harlan", "Kevin Harlan called it.", HITS) == 3
    assert source_for("Paris", "Paris is the capital of France.", HITS) is None


def test_markers_and_echoed_prefill() -> None:
    assert markers("a [2] b [1, 2] c [3]") == [2, 1, 3]
    assert _unprefix(" Answer: 11", CONCISE_PREFILL) == " 11"
    assert _unprefix("11", CONCISE_PREFILL) == "11"


def test_short_answer_must_come_from_the_draft_or_passages() -> None:
    draft = "Krasinski Palace (1677-1683) was built then. [1]"
    assert _cut_from("Kevin Harlan", draft, HITS)  # in a passage
    assert _cut_from("Krasinski Palace", draft, HITS)  # in the draft
    assert not _cut_from("1", draft, HITS[2:])  # the marker's number, not a span
    assert not _cut_from("not mentioned", draft, HITS)
