"""Context compression: each passage keeps its sentences most like the question, in order."""

from __future__ import annotations

import numpy as np

from ragline.generate.compress import compress, split_sentences

PASSAGE = ("Tesla was born in 1856 in Smiljan. He moved to New York in 1884. "
           "Edison hired him there. He died in 1943 in a hotel room.")


def test_sentences_split_at_ends_not_inside() -> None:
    assert split_sentences(PASSAGE)[1] == "He moved to New York in 1884."
    assert split_sentences("The U.S. team won, e.g. in 1990. It was late.") == [
        "The U.S. team won, e.g. in 1990.", "It was late."]


def test_keeps_the_best_sentences_in_their_order() -> None:
    out = compress("When did Tesla move to New York, and in which hotel room did he die?",
                   [PASSAGE], 2)
    assert out == ["He moved to New York in 1884. He died in 1943 in a hotel room."]
    assert compress("anything", [PASSAGE], 0) == [PASSAGE]  # 0: whole passages
    assert compress("anything", [PASSAGE, "Short one."], 9) == [PASSAGE, "Short one."]


def test_uses_the_embedding_when_given() -> None:
    calls: list[int] = []

    def embed(texts):  # a stand-in ranking: the question is row 0, sentence 3 wins
        calls.append(len(texts))
        v = np.zeros((len(texts), 2), dtype=np.float32)
        v[:, 1] = 1.0
        v[0] = [1.0, 0.0]
        v[3] = [1.0, 0.0]
        return v

    assert compress("q", [PASSAGE], 1, embed) == ["Edison hired him there."]
    assert calls == [5]  # one call: the question and all four sentences


def test_a_budget_keeps_the_best_sentences_over_all_passages() -> None:
    other = "Edison built a lab. The lab was in New Jersey."
    out = compress("Which state was the lab in, New Jersey?", [PASSAGE, other], 2,
                   budget=1)
    assert out == ["", "The lab was in New Jersey."]  # a passage may lose every sentence
