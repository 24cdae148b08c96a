"""Context compression: the best sentences as ranked, capped per passage and overall, in the
order they are written."""

from __future__ import annotations

from ragline.generate import select
from ragline.generate.compress import choose, split_sentences

PASSAGE = ("Tesla was born in 1856 in Smiljan. He moved to New York in 1884. "
           "Edison hired him there. He died in 1943 in a hotel room.")
OTHER = "Edison built a lab. The lab was in New Jersey."


def texts(chosen: list[select.Sentence]) -> list[str]:
    return [s.text for s in chosen]


def test_sentences_split_at_ends_not_inside() -> None:
    assert split_sentences(PASSAGE)[1] == "He moved to New York in 1884."
    assert split_sentences("The U.S. team won, e.g. in 1990. It was late.") == [
        "The U.S. team won, e.g. in 1990.", "It was late."]


def test_keeps_the_best_sentences_in_their_order() -> None:
    q = "When did Tesla move to New York, and in which hotel room did he die?"
    ranked = select.rank(q, [split_sentences(PASSAGE)], None)
    assert ranked[0].text == "He moved to New York in 1884."  # ranked first ...
    kept = choose(ranked, 2)
    assert texts(kept) == ["He moved to New York in 1884.",  # ... and kept in written order
                           "He died in 1943 in a hotel room."]
    assert len(choose(ranked, 9)) == 4  # a passage with fewer sentences keeps them all


def test_the_caps_per_passage_and_overall(embedder, judge) -> None:
    ranked = select.rank("Which state was the lab in, New Jersey?",
                         [split_sentences(PASSAGE), split_sentences(OTHER)], embedder.embed,
                         (), judge.score)
    assert texts(choose(ranked, 2, budget=1)) == ["The lab was in New Jersey."]
    one_each = choose(ranked, 1)
    assert [s.passage for s in one_each] == [0, 1]
    two = choose(ranked, 9, budget=2)
    assert len(two) == 2 and two == sorted(two, key=lambda s: (s.passage, s.index))
    assert [s.score for s in sorted(two, key=lambda s: -s.score)] == [
        s.score for s in ranked[:2]]  # the best two overall
