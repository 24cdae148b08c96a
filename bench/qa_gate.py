"""Calibration of the retrieval gate (`bench/qa.py --calibrate`): how many answerable
questions the dense-cosine gate turns away, and how many made-up unanswerable ones it lets
through, per threshold; with --with-llm, what the model then does with those."""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
from pathlib import Path
from typing import Any

from qa_data import EXAMPLE, SQUAD, open_index, sample_questions

from ragline.generate.answer import Asker
from ragline.generate.factory import DEFAULT_MIN_SCORE, create_backend, load_config
from ragline.index import Index

# Made up so that the SQuAD dev articles (48 titles: Super Bowl 50, Warsaw, Normans, Tesla,
# Oxygen, Apollo, Amazon rainforest, Kenya, Rhine, ...) cannot answer them.
UNANSWERABLE_SQUAD = [
    "How long should spaghetti be boiled to be al dente?",
    "Who won the 2018 FIFA World Cup?",
    "What is the recommended dose of ibuprofen for a headache in children?",
    "Which programming language introduced the borrow checker?",
    "How many strings does a standard cello have?",
    "What is the tallest mountain in South America?",
    "Who painted the Mona Lisa?",
    "How do you reset a forgotten iPhone passcode?",
    "What is the main ingredient of guacamole?",
    "When was the Eiffel Tower completed?",
    "What is the gestation period of an African elephant?",
    "Which band released the album Abbey Road?",
    "What is the capital city of Mongolia today?",
    "How many players are on a baseball team's field at once?",
    "What temperature does water boil at on Mount Everest?",
    "Who wrote the novel Pride and Prejudice?",
    "What does a sommelier do?",
    "How is sourdough bread leavened?",
    "What is the speed limit on German autobahns?",
    "Which planet has the Great Red Spot?",
    "How many bones are in the adult human hand?",
    "Who founded the company Tesla Motors in 2003?",
    "What is the best way to remove red wine stains from carpet?",
    "What is the chemical formula of table salt?",
    "When did the Berlin Wall fall?",
    "What is the plot of the film Inception?",
    "Which country produces the most coffee?",
    "How do you play a G major chord on guitar?",
    "What language is spoken in Brazil?",
    "Who is the author of the Harry Potter books?",
    "How often should a house plant like a cactus be watered?",
    "What is the rule for offside in ice hockey?",
    "What is the largest species of shark?",
    "How does a microwave oven heat food?",
    "Who was the first woman to win a Nobel Prize?",
    "What are the symptoms of a vitamin D deficiency?",
    "How many calories are in a banana?",
    "What year did the Titanic sink?",
    "What is the currency of Japan?",
    "How do you knit a purl stitch?",
]
# In-domain but absent: the same topics as the corpus, facts it does not state. The retrieval
# gate cannot catch these (the passages are on topic); only the model's refusal can.
NEAR_MISS_SQUAD = [
    "How many tickets were sold for Super Bowl 50?",
    "What was Nikola Tesla's favourite food?",
    "How many metro lines does Warsaw plan to build by 2050?",
    "What is the population of Fresno in 2030?",
    "Who was the head chef of the Victoria and Albert Museum cafe?",
    "What colour was Genghis Khan's horse?",
    "How many students at Harvard study Mongolian?",
    "What is the depth of the Rhine at Basel in metres?",
    "What was the name of Martin Luther's dog?",
    "What is the boiling point of ctenophore tissue?",
]
ANSWERABLE_EXAMPLE = [
    "What water temperature is best for brewing coffee?",
    "Who introduced movable-type printing to Europe?",
    "How do honeybees tell each other where food is?",
    "How do I remove a document from the index?",
    "What grind size should I use for a French press?",
    "What does the queen bee do?",
    "How much coffee per litre of water?",
    "When did printing spread across Europe?",
]
UNANSWERABLE_EXAMPLE = [
    "What is the capital of Peru?",
    "Who won the 2018 FIFA World Cup?",
    "How do I change a car tyre?",
    "What is the speed of light?",
    "How many moons does Jupiter have?",
    "Who wrote Hamlet?",
    "What is the price of a Tesla Model 3?",
    "How do you bake sourdough bread?",
]



# calibration of the retrieval gate -----------------------------------------------------------
def relevances(idx: Index, questions: list[str]) -> list[float]:
    asker = Asker(idx, backend=None, k=1)  # type: ignore[arg-type]  # the gate needs no model
    return [asker.relevance(q, follow_up=False) for q in questions]


def error_rates(pos: list[float], neg: list[float], t: float) -> tuple[float, float]:
    """(answerable questions that would abstain, unanswerable ones that would pass the gate)"""
    return (sum(s < t for s in pos) / len(pos), sum(s >= t for s in neg) / len(neg))


def calibrate(args: argparse.Namespace) -> dict[str, Any]:
    squad = open_index(args.index, SQUAD / "corpus.jsonl")
    example = open_index(Path(tempfile.mkdtemp(prefix="ragline-example-")), EXAMPLE)
    answerable = [q["question"] for q in sample_questions(args.n, args.seed)]
    sets = {
        "squad": (relevances(squad, answerable), relevances(squad, UNANSWERABLE_SQUAD)),
        "squad_near_miss": (None, relevances(squad, NEAR_MISS_SQUAD)),
        "example": (relevances(example, ANSWERABLE_EXAMPLE),
                    relevances(example, UNANSWERABLE_EXAMPLE)),
    }
    table = []
    for t100 in range(10, 61, 5):
        t = t100 / 100
        row: dict[str, Any] = {"threshold": t}
        for name in ("squad", "example"):
            pos, neg = sets[name]
            fa, fp = error_rates(pos, neg, t)  # type: ignore[arg-type]
            row[f"{name}_answerable_abstain"] = round(fa, 3)
            row[f"{name}_unanswerable_pass"] = round(fp, 3)
        row["near_miss_pass"] = round(sum(s >= t for s in sets["squad_near_miss"][1])
                                      / len(NEAR_MISS_SQUAD), 3)
        table.append(row)
    out: dict[str, Any] = {"answerable_squad": len(answerable),
                           "unanswerable_squad": len(UNANSWERABLE_SQUAD),
                           "near_miss_squad": len(NEAR_MISS_SQUAD),
                           "answerable_example": len(ANSWERABLE_EXAMPLE),
                           "unanswerable_example": len(UNANSWERABLE_EXAMPLE),
                           "default_threshold": DEFAULT_MIN_SCORE, "table": table}
    for name, (pos, neg) in sets.items():
        out[f"{name}_scores"] = {"answerable": sorted(round(x, 3) for x in pos or []),
                                 "unanswerable": sorted(round(x, 3) for x in neg)}
    if args.with_llm:
        out["with_llm"] = llm_refusals(squad, args)
    return out


def llm_refusals(idx: Index, args: argparse.Namespace) -> dict[str, Any]:
    """The whole pipeline (gate + model) on the unanswerable and near-miss questions."""
    cfg = load_config(None, gguf=args.model, k=args.k, min_score=args.min_score)
    backend = create_backend(cfg)
    asker = Asker(idx, backend, k=cfg.k, min_score=cfg.min_score, prompt_k=args.prompt_k,
                  concise=not args.no_concise)
    out: dict[str, Any] = {"min_score": cfg.min_score}
    for name, qs in (("unanswerable", UNANSWERABLE_SQUAD), ("near_miss", NEAR_MISS_SQUAD)):
        results = []
        for q in qs:
            r = asker.ask(q)
            asker.history.clear()
            results.append({"question": q, "abstained": r.abstained, "by": r.abstain_reason,
                            "answer": r.answer})
            print(f"{name}: {r.abstained} {r.abstain_reason} {q!r} -> {r.answer[:70]!r}",
                  file=sys.stderr, flush=True)
        out[name] = {"answered_anyway": round(sum(not x["abstained"] for x in results)
                                              / len(results), 3),
                     "abstained_by": dict(collections.Counter(x["by"] for x in results)),
                     "results": results}
    backend.close()
    return out

