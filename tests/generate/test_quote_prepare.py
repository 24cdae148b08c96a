"""What the model is shown and may quote: the best sentences, each its own quotable run, and
the confidence decided before the model runs (no model needed here)."""

from __future__ import annotations

from ragline.generate import extractive as ex
from ragline.generate import quote
from ragline.generate.base import GenerationStats
from ragline.types import Hit

TESLA = ("Tesla moved to New York in 1884. Edison hired him there. The two men argued over "
         "pay. Tesla left Edison in 1885 to found his own company.")
OTHER = "Westinghouse bought Tesla's patents in 1888."


def hits() -> list[Hit]:
    return [Hit(1, 1.0, "a", "tesla.txt", None, None, TESLA),
            Hit(2, 0.5, "b", "westinghouse.txt", None, None, OTHER)]


def test_kept_sentences_are_quoted_apart() -> None:
    """Two sentences of one passage that are not neighbours there are shown side by side;
    a quote running from one into the other would cite words the passage never has in a
    row, so the grammar does not allow it and such a reply is no quote."""
    p = quote.prepare("When did Tesla move to New York and when did he leave Edison?",
                      hits(), [], per_passage=2, embed=None, budget=2)
    assert p.units == [(0, "Tesla moved to New York in 1884."),
                       (0, "Tesla left Edison in 1885 to found his own company.")]
    assert p.texts[0] == "Tesla moved to New York in 1884. Tesla left Edison in 1885 to " \
                         "found his own company." and p.texts[1] == ""
    crossing = "New York in 1884. Tesla left Edison"
    assert crossing in p.texts[0] and crossing not in TESLA
    assert not ex.is_span(crossing, [t for _, t in p.units])
    assert quote.read_reply(crossing, p, GenerationStats()) is None
    assert '"NONE"' not in p.extra["grammar"] and '"None"' not in p.extra["grammar"]
    found = quote.read_reply("in 1885", p, GenerationStats())
    assert found is not None and found.n == 1 and found.span == "in 1885"
    assert found.sentence == "Tesla left Edison in 1885 to found his own company."


def test_whole_passages_are_one_run_each() -> None:
    p = quote.prepare("Who bought Tesla's patents?", hits(), [], per_passage=0, embed=None)
    assert p.units == [(0, TESLA), (1, OTHER)] and p.texts == [TESLA, OTHER]
    found = quote.read_reply("Westinghouse", p, GenerationStats())
    assert found is not None and found.n == 2


def test_confidence_comes_with_the_prompt_and_an_abstention_asks_nothing() -> None:
    p = quote.prepare("When did Tesla move to New York?", hits(), [], per_passage=2,
                      embed=None, relevance=0.6)
    assert 0.0 < p.confidence < 1.0 and p.signals["relevance"] == 0.6
    gone = quote.unanswered(p)
    assert gone.abstained(p.confidence + 1e-9) and not gone.none
    assert gone.stats.completion_tokens == 0 and gone.confidence == p.confidence
