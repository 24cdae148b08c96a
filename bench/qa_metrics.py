"""The figures bench/qa.py prints: per answer mode (the sentence of default `ask`, or the
span of `--short`), the answer-quality, citation, abstention and time figures of issue 10,
and the abstention trade-off curve over the confidence threshold."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from typing import Any

from ragline.eval.qa import contains, exact_match, normalize, token_f1

Row = dict[str, Any]
SIGNALS = ("confidence", "none_p", "first_lp", "mean_lp", "agree", "relevance", "top_score",
           "margin", "sent_sim", "overlap", "window_overlap", "lacks_kind")


def answer_of(row: Row, short: bool) -> str:
    """What the reader gets: the quoted span (--short) or its sentence (default)."""
    return row["span"] if short else row["sentence"]


def abstains(row: Row, threshold: float) -> bool:
    """Abstained by the gate or NONE, or its confidence is under the threshold."""
    c = row.get("confidence")
    return row["abstained"] or (c is not None and c < threshold)


def _pct(values: Sequence[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))] if s else 0.0


def mode_figures(rows: Sequence[Row], unanswerable: Sequence[Row], short: bool,
                 threshold: float) -> dict[str, Any]:
    """Issue 10's figures for one answer mode at one threshold."""
    mean = statistics.fmean
    answered = [r for r in rows if not abstains(r, threshold)]

    def on(r: Row, f: Callable[[str, str], float]) -> float:
        return 0.0 if abstains(r, threshold) else max(f(answer_of(r, short), g)
                                                       for g in r["answers"])

    def supports(r: Row) -> bool:  # the cited passage holds the answer's words
        return bool(r["cited"]) and f" {normalize(answer_of(r, short))} " in \
            f" {normalize(r['cited'])} "

    first = [r["total_ms"] if not short and r["mode"] == "extractive" else r["first_token_ms"]
             for r in rows if not r["abstained"]]
    return {
        "holds_gold": round(mean(not abstains(r, threshold) and contains(answer_of(r, short),
                                                                         r["answers"])
                                 for r in rows), 3),
        "holds_gold_of_answered": round(mean(contains(answer_of(r, short), r["answers"])
                                             for r in answered), 3) if answered else None,
        "f1": round(mean(on(r, token_f1) for r in rows), 3),
        "em": round(mean(on(r, exact_match) for r in rows), 3),
        "cited_supports": round(mean(supports(r) for r in answered), 3) if answered else None,
        "unsupported_markers": sum(not s for r in answered for s in r["supported"]),
        "cited_passage_holds_gold": round(mean(bool(r["cited"]) and contains(r["cited"],
                                                                             r["answers"])
                                               for r in answered), 3) if answered else None,
        "answered_on_answerable": round(len(answered) / len(rows), 3),
        "abstain_on_unanswerable": round(mean(abstains(r, threshold) for r in unanswerable), 3)
        if unanswerable else None,
        "first_token_s_p50": round(_pct(first, 0.5) / 1e3, 2),
        "first_token_s_p95": round(_pct(first, 0.95) / 1e3, 2),
        "prompt_tokens_mean": round(mean(r["prompt_tokens"] for r in rows)),
        "s_per_question": round(mean(r["total_ms"] for r in rows) / 1e3, 2),
    }


def curve(rows: Sequence[Row], unanswerable: Sequence[Row],
          thresholds: Sequence[float]) -> list[dict[str, float]]:
    """Answered-on-answerable against abstained-on-unanswerable, per threshold."""
    out = []
    for t in thresholds:
        out.append({"threshold": t,
                    "answered_on_answerable": round(statistics.fmean(
                        not abstains(r, t) for r in rows), 3),
                    "abstain_on_unanswerable": round(statistics.fmean(
                        abstains(r, t) for r in unanswerable), 3) if unanswerable else 0.0,
                    "short_f1": mode_figures(rows, unanswerable, True, t)["f1"]})
    return out


def choose_threshold(points: Sequence[dict[str, float]], answered_min: float = 0.85) -> float:
    """The threshold that abstains most on unanswerable questions while still answering at
    least `answered_min` of answerable ones (else the one with the best sum of both)."""
    ok = [p for p in points if p["answered_on_answerable"] >= answered_min]
    pool = ok or points
    best = max(pool, key=lambda p: (p["abstain_on_unanswerable"]
                                    + (0 if ok else p["answered_on_answerable"]),
                                    -p["threshold"]))
    return best["threshold"]


def auc(pos: Sequence[float], neg: Sequence[float]) -> float | None:
    """P(a random answerable question scores above a random unanswerable one)."""
    if not pos or not neg:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return round(wins / (len(pos) * len(neg)), 3)


def signal_aucs(rows: Sequence[Row], unanswerable: Sequence[Row]) -> dict[str, float | None]:
    """How well each signal separates answerable from unanswerable questions, over those the
    gate and NONE let through (where a threshold has to decide)."""
    live = [r for r in rows if not r["abstained"]]
    dead = [r for r in unanswerable if not r["abstained"]]
    return {s: auc([r["signals"].get(s, r.get(s, 0.0)) for r in live],
                   [r["signals"].get(s, r.get(s, 0.0)) for r in dead]) for s in SIGNALS}
