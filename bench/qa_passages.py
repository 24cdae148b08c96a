"""How many passages should `ask` rank the sentences of? The best sentence (select.py's shipped
weights) and "some sentence holds a gold answer", for the best 1 to 5 hybrid hits.

    .venv/bin/python bench/qa_passages.py --index /tmp/ragline-bench-squad   # ~9 min, 2 cores

On the tuning split (200 questions) and the judge's held-out-article questions that
bench/qa_select.py does not fit on (424): never the fixed sample, which is only reported.

Results (2026-11-27): best sentence holds a gold answer, tuning / unseen, for 1 to 5 passages:
0.775 / 0.80, 0.82 / 0.847, 0.835 / 0.856, 0.835 / 0.861, 0.84 / 0.858; some sentence does:
0.83 / 0.87, 0.935 / 0.939, 0.965 / 0.958, 0.965 / 0.965, 0.965 / 0.967. Past 3 passages the
scorer finds no more answers than the noise of these samples (a question or two), so `ask`
keeps ranking 3 (answer.py's prompt_k).
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import numpy as np
from qa_data import SQUAD, cached_embed, judge_split, memo, open_index, sample_questions
from qa_select import JUDGE, LEAD

from ragline.eval.qa import contains
from ragline.generate.quote import rank_hits

MOST = 5


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", type=Path, default=Path("/tmp/ragline-bench-squad"))
    args = ap.parse_args()
    idx = open_index(args.index, SQUAD / "corpus.jsonl")
    embed = cached_embed(idx)
    judge = memo(JUDGE) if JUDGE is not None else None
    lead = memo(LEAD) if LEAD is not None else None
    held = judge_split()[1]
    fitted = random.Random(99).sample(held, 600)  # bench/qa_select.py's training questions
    sets = {"tune": sample_questions(200, 2026, True),
            "unseen": [q for q in held if q not in fitted]}
    for name, qs in sets.items():
        best = np.zeros((len(qs), MOST), dtype=bool)
        some = np.zeros((len(qs), MOST), dtype=bool)
        for i, q in enumerate(qs):
            hits = idx.search(q["question"], k=12).hits
            for n in range(1, MOST + 1):
                _, ranked = rank_hits(q["question"], hits[:n], embed, judge, lead)
                best[i, n - 1] = bool(ranked) and contains(ranked[0].text, q["answers"])
                some[i, n - 1] = any(contains(s.text, q["answers"]) for s in ranked)
        for n in range(1, MOST + 1):
            print(f"{name} ({len(qs)} questions), {n} passages: best sentence holds gold "
                  f"{best[:, n - 1].mean():.3f}, some sentence {some[:, n - 1].mean():.3f}")
    idx.close()


if __name__ == "__main__":
    main()
