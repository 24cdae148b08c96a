"""`ragline eval qa`: answer quality of `ask` on a JSON Lines file of questions.

Each line is `{"question": str, "answers": [str, ...], "gold_passage_id": str?}`. Scores are
SQuAD v1.1's (official normalisation: lower case, no punctuation or articles), computed on the
answer with its [n] markers removed; an abstention scores 0. The gold passage id is matched
against the part of a hit's source after '#' (the JSONL loader's `path#_id`), or the file name.
"""

from __future__ import annotations

import collections
import json
import random
import re
import statistics
import string
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ragline.errors import RaglineError

_PUNCT = set(string.punctuation)


def normalize(s: str) -> str:
    s = "".join(ch for ch in s.lower() if ch not in _PUNCT)
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def token_f1(pred: str, gold: str) -> float:
    p, g = normalize(pred).split(), normalize(gold).split()
    same = sum((collections.Counter(p) & collections.Counter(g)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)


def exact_match(pred: str, gold: str) -> float:
    return float(normalize(pred) == normalize(gold))


def contains(text: str, golds: Sequence[str]) -> bool:
    t = f" {normalize(text)} "
    return any(f" {normalize(g)} " in t for g in golds if normalize(g))


def passage_id(source: str) -> str:
    return source.rsplit("#", 1)[-1] if "#" in source else Path(source).name


def load_questions(path: str | Path) -> list[dict[str, Any]]:
    out = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise RaglineError(f"{path}: line {n}: invalid JSON ({e.msg})") from None
        if not isinstance(rec, dict) or not isinstance(rec.get("question"), str) \
                or not isinstance(rec.get("answers"), list) or not rec["answers"]:
            raise RaglineError(f"{path}: line {n}: expected question and a list of answers")
        out.append(rec)
    if not out:
        raise RaglineError(f"{path}: no questions")
    return out


def score_answer(q: dict[str, Any], answer: str, abstained: bool, sources: Sequence[str],
                 cited_texts: Sequence[str]) -> dict[str, Any]:
    """One question's row; `answer` has no [n] markers."""
    golds = [str(a) for a in q["answers"]]
    gold_pid = q.get("gold_passage_id")
    return {
        "question": q["question"],
        "answer": answer,
        "abstained": abstained,
        "em": 0.0 if abstained else max(exact_match(answer, g) for g in golds),
        "f1": 0.0 if abstained else max(token_f1(answer, g) for g in golds),
        "gold_retrieved": (None if gold_pid is None
                           else any(passage_id(s) == str(gold_pid) for s in sources)),
        "citations": len(cited_texts),
        "citations_with_answer": sum(contains(t, golds) for t in cited_texts),
    }


def summarize(rows: list[dict[str, Any]], k: int) -> dict[str, Any]:
    mean = statistics.fmean
    judged = [r["gold_retrieved"] for r in rows if r["gold_retrieved"] is not None]
    n_cit = sum(r["citations"] for r in rows)
    return {
        "questions": len(rows),
        "exact_match": round(mean(r["em"] for r in rows), 4),
        "f1": round(mean(r["f1"] for r in rows), 4),
        f"gold_recall@{k}": round(mean(judged), 4) if judged else None,
        # a citation is counted right when the passage it points to holds a gold answer
        "citation_precision": (round(sum(r["citations_with_answer"] for r in rows) / n_cit, 4)
                               if n_cit else None),
        "abstention_rate": round(mean(r["abstained"] for r in rows), 4),
    }


def evaluate_qa(asker: Any, questions: Sequence[dict[str, Any]],
                on_question: Callable[[int], None] | None = None) -> tuple[dict[str, Any],
                                                                            list[dict[str, Any]]]:
    """Run `asker.ask` (generate.answer.Asker) on each question; returns (summary, rows)."""
    from ragline.generate.citations import strip_markers

    rows = []
    for q in questions:
        r = asker.ask(q["question"])
        rows.append(score_answer(q, strip_markers(r.answer), r.abstained,
                                 [h.source for h in r.retrieved],
                                 [c.text for c in r.citations]))
        asker.history.clear()  # each question stands alone
        if on_question is not None:
            on_question(1)
    return summarize(rows, asker.k), rows


def unanswerable_set(questions: Sequence[dict[str, Any]], passages: Sequence[dict[str, Any]],
                     n: int, seed: int, exclude: Sequence[str] = ()
                     ) -> tuple[list[dict[str, Any]], list[str]]:
    """Hard unanswerable questions: (questions, passage ids to remove from the corpus).

    Each question's gold passage is removed while the other paragraphs of its article stay,
    so retrieval still finds near misses on the same topic. A question qualifies only when no
    other paragraph of its article holds one of its gold answers (it would still be
    answerable), and when its gold passage is not in `exclude` (passages the answerable
    questions need). One question per removed passage; the same arguments always give the
    same set (sorted inputs, a seeded generator)."""
    by_title: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for p in passages:
        by_title[str(p.get("title", ""))].append(p)
    texts = {str(p["_id"]): f" {normalize(str(p['text']))} " for p in passages}
    titles = {str(p["_id"]): str(p.get("title", "")) for p in passages}
    asked: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for q in questions:
        asked[str(q["gold_passage_id"])].append(q)
    skip = set(exclude)

    def qualifies(q: dict[str, Any]) -> bool:
        gold = str(q["gold_passage_id"])
        others = [texts[str(p["_id"])] for p in by_title[titles[gold]] if str(p["_id"]) != gold]
        golds = [f" {normalize(str(a))} " for a in q["answers"] if normalize(str(a))]
        return bool(others) and not any(g in t for g in golds for t in others)

    rng = random.Random(seed)
    chosen: list[dict[str, Any]] = []
    candidates = sorted(pid for pid in asked if pid in texts and pid not in skip)
    for pid in rng.sample(candidates, len(candidates)):  # a seeded shuffle
        fit = sorted((q for q in asked[pid] if qualifies(q)), key=lambda q: str(q["id"]))
        if fit:
            chosen.append(rng.choice(fit))
        if len(chosen) == n:
            break
    return chosen, [str(q["gold_passage_id"]) for q in chosen]
