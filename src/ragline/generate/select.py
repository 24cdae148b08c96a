"""Answer-sentence selection: which sentences of the retrieved passages most likely hold the
answer, scored by a small linear model over cheap features and a cross-encoder's score.

Why: Qwen 0.5B picks the wrong sentence when shown several passages (its quote's sentence held
a SQuAD gold answer 0.54 of the time, against 0.91 for "some sentence shown holds it"), while
the question-sentence cosine from the embedding model the index has loaded already, plus word
overlap, ranks the answer's sentence first ~0.67 of the time. Adding what a sentence needs to
answer (a year for "when", a number for "how many", a name for "who"), the words of the
sentence before it (the answer often follows the sentence that names the subject: "This book
... promoted uniformitarianism") and weighting the shared words by their rarity among the
candidate sentences lifts that to 0.70-0.735. The cosine compares two vectors made apart, so
a sentence about the question's subject scores as high as the one that answers it; the
cross-encoder (`judge`: embed/cross.py, question and sentence read together) lifts the best
sentence to 0.76 (fixed sample) / 0.81 (tuning split) / 0.82 (424 questions of articles
neither it nor these weights saw; 0.76 before it). The span reader (`reader`: embed/reader.py)
reads each sentence too; how far its best span leads its "no answer here" is nearly as good a
ranker alone (0.75 / 0.795 / 0.785), and with the judge it lifts the best sentence to 0.79 /
0.835 / 0.856. The weights were fitted (conditional logit over each question's sentences) on
600 SQuAD dev questions of the 8 articles neither model trained on (bench/qa_select.py).

The same features of the best sentence also say whether the passages answer at all
(`confidence`), before the model is asked: a hard unanswerable question (its own passage gone,
its article's other paragraphs retrieved) finds sentences about its subject, but none as close
to the question as an answer's sentence is. Fitted (logistic) on those 600 questions, each also
asked with its gold passage and every passage holding a gold answer taken out of the hits.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ragline.generate.citations import content_tokens

Embed = Callable[[Sequence[str]], np.ndarray]  # L2-normalised rows, one per text
#: a pair model's score of each sentence for the question, higher answers: the cross-encoder's
#: (embed/cross.py), or the span reader's lead over "no answer here" (embed/reader.py)
Judge = Callable[[str, Sequence[str]], np.ndarray]

_YEAR = re.compile(r"\b(1\d{3}|20\d{2})s?\b|\bcentur(y|ies)\b|\b(January|February|March|April"
                   r"|May|June|July|August|September|October|November|December)\b")
_NUMBER = re.compile(r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve"
                     r"|twenty|thirty|forty|fifty|hundred|thousand|million|billion|dozen|half"
                     r")\b", re.IGNORECASE)
_NAME = re.compile(r"(?<!^)(?<![.!?]\s)\b[A-Z][a-z]+")
_WORD = re.compile(r"[A-Za-z]+")
_KINDS = (
    ("date", re.compile(r"\b(when|what year|which year|what date|what century|what decade"
                        r"|which century)\b")),
    ("number", re.compile(r"\b(how (many|much|long|old|far|large|big|high|tall|often)"
                          r"|what (percent|percentage|number))\b")),
    ("name", re.compile(r"\b(who|whom|whose|where)\b|\b(what|which) (city|country|state"
                        r"|town|region|continent|county|place)\b")),
)

#: feature order of WEIGHTS
FEATURES = ("sim", "overlap", "window_overlap", "first_passage", "passage_score",
            "has_kind", "lacks_kind", "new_words", "rare_overlap", "rare_window_overlap",
            "judge", "reader")
#: per unit of each raw feature; fitted by bench/qa_select.py (see the module docstring)
WEIGHTS = (1.745, -2.0, -0.314, 0.551, 0.237, 0.243, -0.317, 0.264, 0.753, 2.2, 0.209, 0.189)


def answer_kind(question: str) -> str:
    """"date", "number", "name" or "" (no kind the sentence must show)."""
    q = question.lower()
    return next((kind for kind, pattern in _KINDS if pattern.search(q)), "")


def shows_kind(kind: str, sentence: str, question: str) -> bool:
    """Whether the sentence holds something of the kind the question asks for; a name counts
    only when the question does not already say it."""
    return _shows(kind, sentence, _question_words(question))


def _question_words(question: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(question)}


def _shows(kind: str, sentence: str, question_words: set[str]) -> bool:
    if kind == "date":
        return bool(_YEAR.search(sentence))
    if kind == "number":
        return bool(_NUMBER.search(sentence))
    return any(w.lower() not in question_words for w in _NAME.findall(sentence))


@dataclass(frozen=True)
class Sentence:
    """One sentence of a shown passage: where it is, and its answer score."""

    passage: int  # index into the passages
    index: int  # its place in the passage
    text: str
    score: float = 0.0
    features: tuple[float, ...] = ()  # FEATURES, in order


def features(question: str, passages: Sequence[Sequence[str]], sims: np.ndarray,
             passage_scores: Sequence[float], judged: np.ndarray | None = None,
             read: np.ndarray | None = None) -> np.ndarray:
    """One row of FEATURES per sentence, passages flattened in order. `sims` are the
    question-sentence cosines; `passage_scores` the retriever's, relative to the best;
    `judged` the cross-encoder's scores, `read` the span reader's leads (0 without)."""
    asked = content_tokens(question)
    kind = answer_kind(question)
    question_words = _question_words(question)  # once, not per sentence
    top = max(passage_scores) if passage_scores else 0.0
    tokens = [[content_tokens(text) for text in sentences] for sentences in passages]
    weight = rarity(asked, [words for ss in tokens for words in ss])
    rows: list[list[float]] = []
    at = 0
    for p, sentences in enumerate(passages):
        previous: set[str] = set()
        for text, words in zip(sentences, tokens[p], strict=True):
            shared = len(asked & words) / (len(asked) or 1)
            window = len(asked & (words | previous)) / (len(asked) or 1)
            has = bool(kind) and _shows(kind, text, question_words)
            rows.append([float(sims[at]), shared, window, float(p == 0),
                         float(passage_scores[p] - top) if passage_scores else 0.0,
                         float(has), float(bool(kind) and not has),
                         math.log1p(len(words - asked)),
                         sum(weight[w] for w in asked & words),
                         sum(weight[w] for w in asked & (words | previous)),
                         float(judged[at]) if judged is not None else 0.0,
                         float(read[at]) if read is not None else 0.0])
            previous = words
            at += 1
    return np.asarray(rows, dtype=np.float64).reshape(-1, len(FEATURES))


def rarity(asked: set[str], sentences: Sequence[set[str]]) -> dict[str, float]:
    """Each question word's share of the question's weight, weighted by how few of the
    candidate sentences hold it (an IDF over them): a sentence sharing the question's rare
    words ("uniformitarianism") is likelier its answer than one sharing its common ones."""
    n = len(sentences)
    idf = {w: math.log(1 + n / (1 + sum(w in s for s in sentences))) for w in asked}
    total = sum(idf.values()) or 1.0
    return {w: v / total for w, v in idf.items()}


def similarities(question: str, sentences: Sequence[str], embed: Embed | None) -> np.ndarray:
    """Question-sentence cosines (content-word overlap without an embedder)."""
    if embed is not None and sentences:
        vecs = embed([question, *sentences])
        return np.asarray(vecs[1:] @ vecs[0], dtype=np.float64)
    q = content_tokens(question)
    return np.array([len(q & content_tokens(s)) / (len(q) or 1) for s in sentences])


def rank(question: str, passages: Sequence[Sequence[str]], embed: Embed | None,
         passage_scores: Sequence[float] = (), judge: Judge | None = None,
         lead: Judge | None = None) -> list[Sentence]:
    """Every sentence of the passages, best answer candidate first (stable on ties). `lead`
    scores like `judge`: the span reader's lead of each sentence (embed/reader.py)."""
    flat = [(p, i, s) for p, ss in enumerate(passages) for i, s in enumerate(ss)]
    if not flat:
        return []
    texts = [s for _, _, s in flat]
    sims = similarities(question, texts, embed)
    judged = judge(question, texts) if judge is not None else None
    read = lead(question, texts) if lead is not None else None
    rows = features(question, passages, sims, list(passage_scores), judged, read)
    scores = rows @ np.asarray(WEIGHTS)
    order = np.argsort(-scores, kind="stable")
    return [Sentence(flat[j][0], flat[j][1], flat[j][2], float(scores[j]),
                     tuple(float(x) for x in rows[j])) for j in order]


#: logistic P(answerable) over `signals`; fitted by bench/qa_select.py (a rerun there
#: prints these to within 0.01)
ANSWERABLE_BIAS = -4.455
ANSWERABLE_WEIGHTS = {"relevance": 1.6, "top_score": 0.39, "margin": 0.396, "sent_sim": 2.452,
                      "overlap": -0.02, "window_overlap": 1.986, "lacks_kind": -0.086,
                      "judge": 0.123, "reader": 0.085}


def signals(ranked: Sequence[Sentence], relevance: float) -> dict[str, float]:
    """What `confidence` weighs: the best passage's dense cosine (`relevance`), the best
    sentence's score and its lead over the next, and the best sentence's own features
    (the judge's score and the reader's lead among them)."""
    if not ranked:
        return {name: 0.0 for name in ANSWERABLE_WEIGHTS} | {"relevance": relevance}
    best = dict(zip(FEATURES, ranked[0].features, strict=True))
    runner_up = ranked[1].score if len(ranked) > 1 else ranked[0].score
    return {"relevance": relevance, "top_score": ranked[0].score,
            "margin": ranked[0].score - runner_up, "sent_sim": best["sim"],
            "overlap": best["overlap"], "window_overlap": best["window_overlap"],
            "lacks_kind": best["lacks_kind"], "judge": best["judge"], "reader": best["reader"]}


def confidence(signals: dict[str, float]) -> float:
    """P(the passages answer the question), from `signals`."""
    z = ANSWERABLE_BIAS + sum(w * signals[name] for name, w in ANSWERABLE_WEIGHTS.items())
    return 1.0 / (1.0 + math.exp(-z))
