"""End-to-end question answering on SQuAD v1.1 dev, and calibration of the abstention gate.

A fixed sample of questions (seed 2026) over the full 2,067-passage corpus, answered by
`ragline ask`'s pipeline with the default embedded model. Prints, for default `ask` (the
passage sentence that holds the quoted span) and `--short` (the span): how often the answer
holds a gold answer, SQuAD F1 / EM (official normalisation, [n] markers removed), how often
the cited passage holds the answer's words (cited-supports) and markers judged unsupported,
how often the cited passage holds a gold answer, answered-on-answerable and
abstain-on-unanswerable at the shipped confidence threshold, first token p50 / p95 (warm: the
model loaded and the fixed system prompt in llama.cpp's cache), prompt tokens, s/question;
then the abstention curve over thresholds and how well each signal separates answerable from
unanswerable questions (AUC). The two modes are two runs; the default mode's first token is
when its sentence is complete. The curve and the unanswerable set use the `--short` run.
`--span-by model` has the model mark the answer's words instead of the span reader.

The unanswerable set is hard, not made up: SQuAD questions asked of a second index built
without their gold passage (the article's other paragraphs stay, so near misses are
retrieved), where no other paragraph of the article states a gold answer
(`ragline.eval.qa.unanswerable_set`, deterministic). 140 passages are removed; the first 40
questions tune (`--tune`), the next 100 are reported.

    .venv/bin/python bench/qa.py --limit 100 --unanswerable 60   # the report
    .venv/bin/python bench/qa.py --tune --limit 40 --unanswerable 40   # the tuning split
    .venv/bin/python bench/qa.py --free --limit 40               # free-text answers (before)
    .venv/bin/python bench/qa.py --cold 5                        # cold `ragline ask` processes
    .venv/bin/python bench/qa.py --calibrate               # the gate's two error rates, no LLM
    .venv/bin/python bench/qa.py --calibrate --with-llm    # ... and the model's own refusals

The indexes are built at --index (default /tmp/ragline-bench-squad) and --index + "-holdout"
on first use.

Results (2026-11-26, the span reader of embed/reader.py marking the answer's words, and its
lead a feature of select.py's scorer beside the judge's; 2 cores, nothing else running; the
README has the table): `--limit 200 --unanswerable 100`, threshold 0.40. Sentence / span:
holds gold 0.725 / 0.565 (of answered 0.848 / 0.661), F1 0.173 / 0.583, EM 0 / 0.48; cited
passage holds the answer's words 1.00, 0 unsupported markers, cited passage holds a gold
answer 0.918; answered 0.855 of answerable, abstained on 0.71 of unanswerable (0.45: 0.835 /
0.74, 0.35: 0.875 / 0.69); first token p50 0.38 / 0.41 s, p95 0.59 / 0.70 s; no model call,
0.39 / 0.43 s/question. AUC of the confidence 0.888. The same with `--span-by model` (Qwen
quotes from the same sentence): span F1 0.472, EM 0.39, holds gold 0.50, first token p50 1.07
s, 179 prompt tokens. Tuning split (`--tune --unanswerable 40`, its 200 questions): 0.40
answers 0.88 and abstains on 0.75 there (0.45: 0.84 / 0.80; its first 100 alone: 0.85 / 0.80
at 0.45); `--short` F1 there 0.582. `--cold 5`: first token 1.23 s median, process 1.96 s (the
LLM is not loaded when the reader marks the span).

The run with the judge alone (the best sentence only in both prompts, the model marking the
span): `--limit 200 --unanswerable 100`, threshold 0.40. Sentence / span: holds gold
0.70 / 0.475 (of answered 0.838 / 0.569), F1 0.174 / 0.462, EM 0 / 0.38; cited passage holds
the answer's words 1.00, 0 unsupported markers, cited passage holds a gold answer 0.922;
answered 0.835 of answerable, abstained on 0.66 of unanswerable (0.35: 0.845 / 0.61, 0.30:
0.895 / 0.59); first token p50 0.96 / 0.78 s, p95 1.97 / 1.14 s; 179 prompt tokens, 1.07
s/question. AUC of the confidence 0.853. Tuning split (`--tune --limit 100 --unanswerable
40`): 0.40 answers 0.90 and abstains on 0.725 there (0.45: 0.84 / 0.80); `--short` F1 there
0.504 with the best sentence, 0.471 with the best two (`--budget 2`). `--cold 5`: first token
2.3 s median, process 4.9 s.

The run before the judge (rarity-weighted overlaps, no NONE in the grammar, the best two
sentences for `--short`; load 2-4): holds gold 0.635 / 0.39 (of answered 0.774 / 0.476), F1
0.158 / 0.370, EM 0 / 0.305; answered 0.82, abstained 0.68; first token p50 1.84 / 0.88 s;
confidence AUC 0.822; `--cold 5` (load ~0.8): 2.93 s, process 3.69 s. On 60 tuning questions,
1 / 2 / 3 best sentences in the prompt: `--short` F1 0.423 / 0.476 / 0.447, the quoted
sentence holds gold 0.65 / 0.65 / 0.633, first token 0.9 / 1.1 / 1.5 s.

Before the selector (extractive answers, the model choosing among each passage's 2 most
similar sentences; load 4-9):
- Reported: `--limit 100 --unanswerable 60` (the 200-question target did not fit the time on
  a machine this busy: ~9 s a question). Sentence / span: holds gold 0.54 / 0.43, F1 0.132 /
  0.404, EM 0 / 0.36; cited passage holds the answer's words 1.00, 0 unsupported markers,
  cited passage holds a gold answer 0.72; at threshold 0.4 answered 0.94 of answerable and
  abstained on 0.30 of unanswerable; first token p50 8.3 s (span) / 8.7 s (sentence), p95
  17 s; 371 prompt tokens; recall@5 0.94, 0.91 within the 3 passages in the prompt. Signal
  AUCs (answerable vs unanswerable, among answers that reached the model): confidence 0.79,
  overlap 0.77, sentence similarity 0.75, relevance 0.67, agreement 0.54, model log-probs of
  the quote 0.54 (mean) / 0.56 (first token), P(none) 0.42. `--cold 3`: first token 42.7 s.
- Tuning split (`--tune --limit 40 [--unanswerable 40]`), choosing by numbers:
  2 sentences per passage: 393 prompt tokens, `--short` F1 0.357, holds gold 0.475
  (sentence), first token p50 6.1 s (load ~5); whole passages (`--per-passage 0`): 589
  tokens, F1 0.437, holds gold 0.525, p50 15.6 s (load 5-8). Kept 2 sentences for the time
  to first token; the answer is in the 2 kept sentences of the 3 passages for 85% of these
  questions (100% whole, 90% with 3 sentences). A free draft turn before the quote
  (the old two-turn idea): dropped after 8 questions (3 answerable ones abstained because the
  draft declined; 9-15 s first token). The model's own signals did not separate near misses
  (AUC 0.51 for exp(mean log-prob) x (1 - P(none)); the model almost never considers NONE,
  P(none) ~0.015 either way), so the confidence is a logistic model over relevance,
  question-sentence similarity and overlap fitted on these 80 rows (cross-validated AUC
  0.69), and 0.4 is the threshold that abstains most while answering >= 85% there
  (in-sample: 0.85 / 0.225).

Before extractive decoding (free text, two turns):
Results (2026-11-25, 2 shared cores, load ~1.5-2, two-turn answers: draft sentence, then the
words that answer + [n]; 3 of the k=5 passages in the prompt), `--limit 60`:
recall@5 0.917 (0.883 within the 3 in the prompt), EM 0.217, F1 0.343, answer contains a gold
answer 0.45, cited passage holds a gold answer 0.741 (of answered), citations supported 0.963,
abstention 0.10 (4 by the model, 2 by the gate), 5.6 s per question, first token 5.3 s.
On 24 `--tune` questions the same code gives F1 0.52 (was 0.27 with the one-turn, k=5 prompt),
cited passage holds the answer 0.86 (unchanged), 5.7 s per question (was 14.4, measured
minutes apart at similar load; prompt ~550 tokens instead of ~900).
What limits F1 now: the 0.5B model picks the wrong span or copies a whole sentence; when the
draft is wrong, no passage cited holds the gold answer either.
`--calibrate --with-llm` with this code: 17 of 40 made-up off-corpus questions answered anyway
(0.425; the gate stops 22, the model 1), all 10 in-domain near misses answered.

Earlier (one turn, all 5 passages in the prompt, 2 shared cores under load ~5-8 from other
jobs, Qwen2.5-Coder-0.5B via xllamacpp, 2 threads, k=5, hybrid retrieval, min_score 0.35),
`--limit 40`:
recall@5 0.90, EM 0.00, F1 0.161, answer contains a gold answer 0.55, cited passage holds a
gold answer 0.737 (of answered), answers with a citation 0.974 (39% written by the model, the
rest attributed), citations supported 0.837, abstention 0.05 (2 of 40, by the model), 15.0 s
per question, first token 13.0 s mean (prefill of ~900 prompt tokens dominates), 20.7 tok/s.
F1 is low because the 0.5B model answers in whole sentences ("The most common form of school
discipline was corporal punishment. [1]") where SQuAD golds are short spans; asking it for the
shortest phrase made it reply a bare "[2]" (see generate/prompt.py).
`--calibrate --with-llm`: the gate passes 18 of 40 made-up off-corpus questions and the model
then answered all 18 (45% answered anyway); all 10 in-domain near misses were answered.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from qa_data import SQUAD, gold_id, holdout_index, open_index, sample_questions, unanswerable
from qa_gate import calibrate
from qa_metrics import choose_threshold, curve, mode_figures, signal_aucs

from ragline.generate import quote
from ragline.generate.answer import SPAN_BY, Asker
from ragline.generate.citations import strip_markers
from ragline.generate.factory import DEFAULT_MIN_CONFIDENCE, create_backend, load_config

THRESHOLDS = [0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.325, 0.35, 0.375, 0.4, 0.45, 0.5,
              0.6, 0.7, 0.8, 0.9]
WARMUP = "Which NFL team won Super Bowl 50?"


# the QA run -------------------------------------------------------------------------------
def ask_all(asker: Asker, questions: list[dict[str, Any]], label: str) -> list[dict[str, Any]]:
    """One row per question: the answer both ways, its signals, citation and timings."""
    rows = []
    for i, q in enumerate(questions, start=1):
        r = asker.ask(q["question"])
        asker.history.clear()
        free = strip_markers(r.answer) if not r.abstained else ""
        row = {
            "id": q["id"], "question": q["question"], "answers": sorted(set(q["answers"])),
            "mode": r.mode, "span_by": r.span_by, "abstained": r.abstained,
            "reason": r.abstain_reason,
            "span": r.span or free, "sentence": r.sentence or free, "raw": r.raw_answer,
            "confidence": r.confidence, "signals": r.signals, "relevance": r.relevance,
            "recall": any(gold_id(h.source) == q["gold_passage_id"] for h in r.retrieved),
            "recall_prompt": any(gold_id(h.source) == q["gold_passage_id"]
                                 for h in r.retrieved[: asker.prompt_k]),
            "cited": r.citations[0].text if r.citations else "",
            "supported": [c.supported for c in r.citations],
            "prompt_tokens": r.prompt_tokens, **r.timings,
        }
        rows.append(row)
        print(f"{label} [{i}/{len(questions)}] {r.timings['first_token_ms'] / 1e3:.1f}s "
              f"conf={r.confidence if r.confidence is None else round(r.confidence, 2)} "
              f"abst={r.abstained} {q['question'][:50]!r} -> {row['span'][:50]!r} "
              f"gold={row['answers'][0][:30]!r}", file=sys.stderr, flush=True)
    return rows


def run_qa(args: argparse.Namespace) -> dict[str, Any]:
    idx = open_index(args.index, SQUAD / "corpus.jsonl")
    questions = sample_questions(args.n, args.seed, args.tune)[: args.limit or args.n]
    cfg = load_config(None, gguf=args.model, k=args.k, min_score=args.min_score)
    backend = create_backend(cfg)
    t = time.perf_counter()
    getattr(backend, "load", lambda: None)()
    load_s = time.perf_counter() - t

    def asker(index: Any, short: bool) -> Asker:
        a = Asker(index, backend, k=cfg.k, min_score=cfg.min_score, prompt_k=args.prompt_k,
                  concise=short, extractive=not args.free, per_passage=args.per_passage,
                  min_confidence=0.0,  # thresholds are applied afterwards, from the rows
                  budget=args.budget, span_by=args.span_by)
        a.ask(WARMUP)  # the fixed system prompt into the KV cache: "warm" as a server is
        return a

    # the sentence and the short answer are different runs (different prompts)
    rows = {short: ask_all(asker(idx, short), questions, "short" if short else "sentence")
            for short in (False, True)}
    unans: list[dict[str, Any]] = []
    if args.unanswerable:
        qs, removed = unanswerable(args.unanswerable, args.tune, args.n, args.seed)
        hold = holdout_index(Path(f"{args.index}-holdout"), removed)
        unans = ask_all(asker(hold, True), qs, "unanswerable")
        hold.close()
    backend.close()
    threshold = DEFAULT_MIN_CONFIDENCE if args.threshold is None else args.threshold
    base = rows[True]
    points = curve(base, unans, THRESHOLDS) if unans else []
    out: dict[str, Any] = {
        "model": backend.name, "questions": len(questions), "unanswerable": len(unans),
        "split": "tune" if args.tune else "fixed sample", "k": cfg.k,
        "prompt_k": args.prompt_k, "per_passage": args.per_passage, "free": args.free,
        "budget": args.budget, "span_by": args.span_by,
        "model_load_s": round(load_s, 2), "threshold": threshold,
        "recall@k": round(statistics.fmean(r["recall"] for r in base), 3),
        "recall_in_prompt": round(statistics.fmean(r["recall_prompt"] for r in base), 3),
        "prompt_tokens_mean": round(statistics.fmean(r["prompt_tokens"] for r in base)),
        "s_per_question": round(statistics.fmean(r["total_ms"] for r in base) / 1e3, 2),
        "default": mode_figures(rows[False], unans, False, threshold),
        "short": mode_figures(base, unans, True, threshold),
    }
    if unans:
        out["curve"] = points
        out["chosen_threshold"] = choose_threshold(points)
        out["signal_auc"] = signal_aucs(base, unans)
    out["rows"] = {"answerable": base, "unanswerable": unans, "sentence": rows[False]}
    return out


def cold(args: argparse.Namespace) -> dict[str, Any]:
    """`ragline ask --json` as a fresh process, N times: first token and wall time."""
    questions = sample_questions(args.n, args.seed, args.tune)[: args.cold]
    firsts, walls = [], []
    env = {**os.environ, "RAGLINE_INDEX": str(args.index)}
    for q in questions:
        t = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "ragline.cli.app", "ask", "--json",
                               q["question"]], capture_output=True, text=True, env=env,
                              check=True)
        walls.append(time.perf_counter() - t)
        firsts.append(json.loads(done.stdout)["timings"]["first_token_ms"] / 1e3)
        print(f"cold: first token {firsts[-1]:.1f}s (after model load), process "
              f"{walls[-1]:.1f}s", file=sys.stderr, flush=True)
    return {"cold_runs": len(walls), "first_token_s_median": round(statistics.median(firsts), 2),
            "process_s_median": round(statistics.median(walls), 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", type=Path, default=Path("/tmp/ragline-bench-squad"))
    ap.add_argument("--n", type=int, default=200, help="sample size (fixed by --seed)")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--limit", type=int, default=None, help="answer only the first N of it")
    ap.add_argument("-k", type=int, default=None, help="passages per question (default 5)")
    ap.add_argument("--prompt-k", type=int, default=3, help="of those, passages in the prompt")
    ap.add_argument("--per-passage", type=int, default=quote.PER_PASSAGE,
                    help="sentences kept per passage in the extractive prompt (0: all)")
    ap.add_argument("--budget", type=int, default=None,
                    help="extractive: the most sentences over all passages (0: no limit; "
                         f"default {quote.BUDGET_SENTENCE} for the sentence answer, "
                         f"{quote.BUDGET_SHORT} for --short)")
    ap.add_argument("--span-by", choices=SPAN_BY, default=SPAN_BY[0],
                    help="who marks the answer's words in the chosen sentence")
    ap.add_argument("--free", action="store_true",
                    help="the free-text answers of before (no grammar), for comparison")
    ap.add_argument("--no-concise", action="store_true", help="(--calibrate) draft sentence")
    ap.add_argument("--unanswerable", type=int, default=0, metavar="N",
                    help="also N questions whose gold passage is removed from the index")
    ap.add_argument("--threshold", type=float, default=None,
                    help="confidence threshold to report at (default: the shipped one)")
    ap.add_argument("--tune", action="store_true",
                    help="the tuning split: answerable questions from outside the fixed "
                         "sample (seed 7), the first 40 unanswerable ones")
    ap.add_argument("--cold", type=int, default=0, metavar="N",
                    help="instead: N cold `ragline ask` processes, first token and wall time")
    ap.add_argument("--model", default=None, help="GGUF path or packaged name")
    ap.add_argument("--min-score", type=float, default=None)
    ap.add_argument("--calibrate", action="store_true", help="the abstention gate's errors")
    ap.add_argument("--with-llm", action="store_true", help="with --calibrate: run the model")
    ap.add_argument("--out", type=Path, default=None, help="write all rows as JSON here")
    args = ap.parse_args()
    if not (SQUAD / "corpus.jsonl").is_file():
        sys.exit(f"SQuAD data not found at {SQUAD}")
    result = (calibrate(args) if args.calibrate else cold(args) if args.cold
              else run_qa(args))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    shown = {k: v for k, v in result.items() if k != "rows" and not k.endswith("_scores")}
    if "with_llm" in shown:
        shown["with_llm"] = {k: ({kk: vv for kk, vv in v.items() if kk != "results"}
                                 if isinstance(v, dict) else v)
                             for k, v in shown["with_llm"].items()}
    print(json.dumps(shown, indent=2))


if __name__ == "__main__":
    main()
