"""Answer-sentence selection with the real embedding model: the sentence that answers ranks
first, the kind of answer a question asks for counts, and the confidence that the passages
answer at all is lower for a near miss than for the passage that answers."""

from __future__ import annotations

import numpy as np
import pytest

from ragline.generate import quote, select
from ragline.generate.compress import split_sentences

TESLA = ("Nikola Tesla was a Serbian-American inventor. He moved to New York in 1884 to work "
         "for Edison. Edison offered him a bonus for redesigning the generators. Tesla later "
         "set up his own laboratory on Fifth Avenue.")
LAB = ("The Fifth Avenue laboratory burned down in March 1895. Much of Tesla's early "
       "research was lost in the fire.")
COFFEE = "Coffee is brewed with water just below boiling. Grind size sets the extraction time."


def test_answer_kinds() -> None:
    assert select.answer_kind("When did Tesla move to New York?") == "date"
    assert select.answer_kind("In what year was the lab lost?") == "date"
    assert select.answer_kind("How many languages did Tesla speak?") == "number"
    assert select.answer_kind("Who offered Tesla a bonus?") == "name"
    assert select.answer_kind("Where did Tesla set up his laboratory?") == "name"
    assert select.answer_kind("Why did the lab burn?") == ""


def test_shows_kind_needs_something_new() -> None:
    q = "Who offered Tesla a bonus?"
    assert select.shows_kind("name", "Edison offered him a bonus.", q) is False  # first word
    assert select.shows_kind("name", "The bonus came from Edison.", q) is True
    assert select.shows_kind("name", "The bonus came from Tesla.", q) is False  # asked
    assert select.shows_kind("date", "It burned in March.", "When?") is True
    assert select.shows_kind("number", "He spoke eight languages.", "How many?") is True


def test_the_answering_sentence_ranks_first(embedder, judge, reader) -> None:
    passages = [split_sentences(TESLA), split_sentences(LAB), split_sentences(COFFEE)]
    calls: list[int] = []

    def embed(texts):
        calls.append(len(texts))
        return embedder.embed(texts)

    ranked = select.rank("When did Tesla move to New York?", passages, embed, [1.0, 0.8, 0.1])
    assert calls == [9]  # one call: the question and all 8 sentences
    assert ranked[0].text == "He moved to New York in 1884 to work for Edison."
    assert (ranked[0].passage, ranked[0].index) == (0, 1)
    assert len(ranked) == 8 and len(ranked[0].features) == len(select.FEATURES)
    assert [s.score for s in ranked] == sorted((s.score for s in ranked), reverse=True)
    # the weights are fitted with the pair models' scores among the features, as `ask` ranks
    lost = select.rank("When was the Fifth Avenue laboratory lost?", passages,
                       embedder.embed, [0.9, 1.0, 0.1], judge.score, quote.leads(reader.read))
    assert lost[0].text == "The Fifth Avenue laboratory burned down in March 1895."


def test_a_date_question_prefers_the_sentence_with_a_date() -> None:
    """Same words shared with the question, only one says when: the kind decides."""
    sentences = [["Tesla moved his laboratory to Colorado Springs.",
                  "Tesla moved his laboratory to Colorado Springs in 1899."]]
    ranked = select.rank("When did Tesla move his laboratory?", sentences, None)
    assert ranked[0].index == 1
    assert ranked[0].features[select.FEATURES.index("has_kind")] == 1.0
    assert ranked[1].features[select.FEATURES.index("lacks_kind")] == 1.0


def test_the_sentence_after_the_subject_gets_its_words() -> None:
    """"This book ..." shares no word with the question; the sentence before it does."""
    passage = [["Lyell published Principles of Geology in 1830.",
                "This book promoted the doctrine of uniformitarianism."]]
    ranked = select.rank("Which doctrine did Principles of Geology promote?", passage, None)
    by_index = {s.index: s for s in ranked}
    window = select.FEATURES.index("window_overlap")
    overlap = select.FEATURES.index("overlap")
    assert by_index[1].features[window] > by_index[1].features[overlap]


def test_rare_question_words_weigh_more() -> None:
    """A question word most candidate sentences share says little about which one answers;
    one that only a few hold says much."""
    sentences = [{"tesla", "lab"}, {"tesla", "fire"}, {"tesla", "generators"}]
    weight = select.rarity({"tesla", "fire"}, sentences)
    assert sum(weight.values()) == pytest.approx(1.0)
    assert weight["fire"] > weight["tesla"] > 0
    rows = select.features("What did Tesla lose in the fire?",
                           [["Tesla built a lab.", "Tesla lost notes in the fire."]],
                           np.zeros(2), [1.0])
    rare = select.FEATURES.index("rare_overlap")
    assert rows[1, rare] > rows[0, rare] > 0


def test_confidence_is_lower_for_a_near_miss(embedder) -> None:
    """The passage that says when scores above its article's other paragraph, which is
    about the same subject but does not say it."""
    q = "When did Tesla move to New York?"
    hit = select.rank(q, [split_sentences(TESLA)], embedder.embed, [1.0])
    miss = select.rank(q, [split_sentences(LAB), split_sentences(COFFEE)], embedder.embed,
                       [1.0, 0.2])
    yes = select.confidence(select.signals(hit, 0.6))
    no = select.confidence(select.signals(miss, 0.5))
    assert 0.0 < no < yes < 1.0
    assert select.signals([], 0.3)["relevance"] == 0.3  # nothing to rank: still defined
    assert select.confidence(select.signals([], 0.3)) < no


def test_the_judge_reads_every_sentence_once(embedder, judge) -> None:
    """The cross-encoder's score of each sentence is its "judge" feature, in one call; the
    best sentence's is a signal of whether the passages answer at all."""
    passages = [split_sentences(TESLA), split_sentences(LAB)]
    calls: list[int] = []

    def counted(question, sentences):
        calls.append(len(sentences))
        return judge.score(question, sentences)

    q = "When did Tesla move to New York?"
    ranked = select.rank(q, passages, embedder.embed, [1.0, 0.8], counted)
    assert calls == [6]
    column = select.FEATURES.index("judge")
    by_text = {s.text: s.features[column] for s in ranked}
    flat = [t for ss in passages for t in ss]
    assert [by_text[t] for t in flat] == pytest.approx(judge.score(q, flat).tolist(), abs=1e-5)
    assert ranked[0].text == "He moved to New York in 1884 to work for Edison."
    assert select.signals(ranked, 0.6)["judge"] == pytest.approx(ranked[0].features[column])
    without = select.rank(q, passages, embedder.embed, [1.0, 0.8])
    assert all(s.features[column] == 0.0 for s in without)


def test_the_readers_lead_is_a_feature(embedder, judge, reader) -> None:
    """The span reader's lead of each sentence over its "no answer here" is the "reader"
    feature, and the best sentence's a signal of whether the passages answer."""
    passages = [split_sentences(TESLA), split_sentences(LAB)]
    lead = quote.leads(reader.read)
    q = "When did Tesla move to New York?"
    ranked = select.rank(q, passages, embedder.embed, [1.0, 0.8], judge.score, lead)
    column = select.FEATURES.index("reader")
    flat = [t for ss in passages for t in ss]
    by_text = {s.text: s.features[column] for s in ranked}
    assert [by_text[t] for t in flat] == pytest.approx(lead(q, flat).tolist(), abs=1e-5)
    assert ranked[0].text == "He moved to New York in 1884 to work for Edison."
    assert by_text[ranked[0].text] > 0 > min(by_text.values())
    assert select.signals(ranked, 0.6)["reader"] == pytest.approx(ranked[0].features[column])


@pytest.mark.parametrize("relevance", [0.0, 1.0])
def test_signals_are_the_answerable_model_inputs(relevance: float) -> None:
    ranked = select.rank("When did Tesla move?", [split_sentences(TESLA)], None)
    s = select.signals(ranked, relevance)
    assert set(s) == set(select.ANSWERABLE_WEIGHTS)
    assert s["relevance"] == relevance
    assert s["margin"] == pytest.approx(ranked[0].score - ranked[1].score)
