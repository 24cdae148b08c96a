"""`eval qa`: SQuAD-style scoring by hand, then the command end to end with a tiny model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ragline.errors import RaglineError
from ragline.eval.qa import contains, exact_match, load_questions, score_answer, summarize, token_f1
from ragline.index import Index


def test_squad_scoring() -> None:
    assert exact_match("The Eiffel Tower!", "eiffel tower") == 1.0
    assert token_f1("in the year 1889", "1889") == pytest.approx(2 * (1 / 3) * 1 / (1 / 3 + 1))
    assert token_f1("nothing", "1889") == 0.0
    assert contains("Built in 1889 by Eiffel.", ["1889"])
    assert not contains("Built in 18890.", ["1889"])


def test_rows_and_summary() -> None:
    q = {"question": "When?", "answers": ["1889", "in 1889"], "gold_passage_id": "p1"}
    good = score_answer(q, "1889", False, ["/x/c.jsonl#p1", "/x/c.jsonl#p2"],
                        ["It opened in 1889.", "Unrelated."])
    refused = score_answer(q, "", True, ["/x/c.jsonl#p2"], [])
    assert (good["em"], good["f1"], good["gold_retrieved"]) == (1.0, 1.0, True)
    assert (refused["em"], refused["gold_retrieved"]) == (0.0, False)
    s = summarize([good, refused], k=5)
    assert s == {"questions": 2, "exact_match": 0.5, "f1": 0.5, "gold_recall@5": 0.5,
                 "citation_precision": 0.5, "abstention_rate": 0.5}


def test_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "q.jsonl"
    bad.write_text('{"question": "no answers"}\n')
    with pytest.raises(RaglineError, match="line 1"):
        load_questions(bad)


def test_eval_qa_cli_end_to_end(tmp_path: Path, smollm2_or_skip: None, embedder) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "tower.txt").write_text("The Eiffel Tower in Paris was completed in 1889.")
    (docs / "bees.txt").write_text("Honeybees communicate with a waggle dance.")
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"question": "When was the Eiffel Tower completed?",
                                     "answers": ["1889"], "gold_passage_id": "tower.txt"})
                         + "\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    run = [sys.executable, "-m", "ragline.cli.app"]
    index = str(tmp_path / "idx")
    with Index(index, embedder=embedder) as idx:
        idx.add([docs])
    proc = subprocess.run([*run, "eval", "qa", str(questions), "--index", index, "--model",
                           "smollm2", "-k", "2", "--json"], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["questions"] == 1 and out["k"] == 2
    assert out["gold_recall@2"] == 1.0
    for key in ("exact_match", "f1", "abstention_rate"):
        assert 0.0 <= out[key] <= 1.0
    assert "citation_precision" in out


@pytest.fixture
def smollm2_or_skip() -> None:
    from ragline.generate.models import smollm2_path

    try:
        smollm2_path()
    except RaglineError as e:
        pytest.skip(str(e))
