"""The unanswerable-set builder: hard (the article's other paragraphs stay), honest (no other
paragraph of the article states a gold answer) and deterministic."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from ragline.eval.qa import normalize, unanswerable_set

SQUAD = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "squad-v1.1-dev"


def _toy() -> tuple[list[dict], list[dict]]:
    passages = [{"_id": f"{t}#{i}", "title": t, "text": f"{t} fact {i}: value {t}{i}."}
                for t in ("A", "B", "C") for i in range(3)] + [
        {"_id": "D#0", "title": "D", "text": "alone value D0."},
        {"_id": "A#3", "title": "A", "text": "A repeats value A0 here."}]
    questions = [{"id": f"q{p['_id']}", "question": f"what of {p['_id']}?",
                  "answers": [p["text"].split("value ")[1].rstrip(".")],
                  "gold_passage_id": p["_id"]} for p in passages]
    return questions, passages


def test_builder_rules_on_a_toy_corpus() -> None:
    questions, passages = _toy()
    chosen, removed = unanswerable_set(questions, passages, n=50, seed=1, exclude=["B#1"])
    assert removed == [q["gold_passage_id"] for q in chosen] and len(set(removed)) == len(removed)
    assert "D#0" not in removed  # its article has no other paragraph: not a near miss
    assert "A#0" not in removed  # A#3 states its answer too: still answerable
    assert "B#1" not in removed  # excluded: an answerable question needs it
    assert sorted(removed) == ["A#1", "A#2", "A#3", "B#0", "B#2", "C#0", "C#1", "C#2"]
    again = unanswerable_set(list(reversed(questions)), list(reversed(passages)), 50, seed=1,
                             exclude=["B#1"])
    assert again == (chosen, removed)  # input order does not matter
    assert unanswerable_set(questions, passages, 4, seed=1, exclude=["B#1"])[1] == removed[:4]
    assert unanswerable_set(questions, passages, 50, seed=2, exclude=["B#1"])[1] != removed


def test_builder_on_squad_is_deterministic_and_hard() -> None:
    if not (SQUAD / "corpus.jsonl").is_file():
        pytest.skip("the SQuAD data is not here")
    passages = [json.loads(x) for x in (SQUAD / "corpus.jsonl").open(encoding="utf-8")]
    questions = [json.loads(x) for x in (SQUAD / "questions.jsonl").open(encoding="utf-8")]
    keep = [q["gold_passage_id"] for q in random.Random(0).sample(questions, 50)]
    chosen, removed = unanswerable_set(questions, passages, 40, seed=3, exclude=keep)
    assert (chosen, removed) == unanswerable_set(questions, passages, 40, seed=3, exclude=keep)
    assert len(chosen) == 40 and not set(removed) & set(keep)
    titles = {p["_id"]: p["title"] for p in passages}
    gone = set(removed)
    for q in chosen:
        rest = [p for p in passages if p["title"] == titles[q["gold_passage_id"]]
                and p["_id"] not in gone]
        assert rest  # near misses stay in the index
        assert not any(f" {normalize(a)} " in f" {normalize(p['text'])} "
                       for a in q["answers"] for p in rest if p["_id"] != q["gold_passage_id"])
