"""Train the answer-span reader that ships as src/ragline/data/reader/ (embed/reader.py).

    .venv/bin/python bench/train_reader.py   # ~25 min, 2 cores; needs ../shared/data (SQuAD)

The packaged all-MiniLM-L6-v2 reads "[CLS] question [SEP] sentence [SEP]" (no segment ids, as
the judge does) and a linear head gives each token a start and an end logit; the answer is the
best-scoring run of the sentence's tokens, snapped to its whole words. Only low-rank adapters
(rank 8, the judge's layers: bench/train_judge.py) and the head are trained, so it ships as a
small file merged into the weights at export (embed/export.py).

Data: the judge's training questions (`qa_data.judge_split`: none of the fixed sample, the
tuning split, their paragraphs, the unanswerable set's removed passages or 8 held-out
articles). Each gives the first sentence of its gold paragraph that holds a gold answer, with
the first answer found in it as the target span, and one other sentence of the paragraph whose
target is [CLS] (no answer here), so the reader also learns to say a sentence does not answer.
Loss: cross-entropy of the start and of the end over [CLS] and the sentence's tokens.

Measured at the end, span F1 / EM of:
- the tuning split's rows of a bench/qa.py run (`--rows`, default /tmp/s12/tune-b1.json, a
  run with the model marking spans): the reader's span of the very sentence `ask` chose,
  against the model's quote there;
- the held-out articles' questions, given their gold sentence.

Results (2026-11-26, the adapter shipped: 2 epochs, 1,605 steps of 16 pairs over 12,844
pairs, 21 min on 2 cores beside a test run): on the 80 tuning-split questions whose chosen
sentence holds a gold answer, span F1 / EM 0.754 / 0.625 against 0.667 / 0.550 for Qwen
0.5B's grammar-bound quote of the same sentences (0.691 when the reader may also answer "no
answer here", which is why `read` always returns its best span); 394 held-out-article gold
sentences 0.717 / 0.571. It put "no answer here" first on 0.92 of 390 sentences of the same
paragraphs without the answer: its lead is a feature of select.py's ranking (see there).

Tried and not shipped (2026-11-27): `--index` adds a third pair per question, the sentence of
its best 3 hits that select.py's scorer before the judge ranks highest without a gold answer (a
near miss, often from another passage; target [CLS]). 2 epochs over 19,397 pairs (37 min): span
F1 0.789 on the tuning rows above (0.754 shipped), 0.696 on the held-out gold sentences
(0.717); "no answer here" first on 0.98 of the sentences without the answer, but also on 0.35
of the gold ones. Refitted with bench/qa_select.py, the best sentence held a gold answer for
0.858 / 0.85 / 0.77 of the unseen / tuning / fixed questions, against 0.856 / 0.835 / 0.79 with
the shipped reader: no gain beyond the noise of 200 questions, so the shipped adapter keeps the
2-pair data.
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from qa_data import SQUAD, judge_split, open_index, passages
from train_judge import candidates, lora_arrays, seeded, train_loop, with_lora

from ragline.embed.factory import DEFAULT_MODEL, PACKAGED
from ragline.embed.reader import ADAPTER, MAX_TOKENS, found_in
from ragline.eval.qa import contains, exact_match, token_f1
from ragline.generate.compress import split_sentences
from ragline.generate.extractive import clean_span
from ragline.generate.prompt import shown_text
from ragline.index import Index

BATCH = 16  # pairs a step (the optimiser is train_judge's: AdamW 1e-3, 100 warm-up steps)


def locate(sentence: str, answers: Sequence[str]) -> tuple[int, int] | None:
    """The character range of the first gold answer found in the sentence (exact case
    first, then any case)."""
    for text in (sentence, sentence.lower()):
        for answer in answers:
            a = answer.strip() if text is sentence else answer.strip().lower()
            at = text.find(a) if a else -1
            if at >= 0:
                return at, at + len(a)
    return None


def examples(qs: Sequence[dict[str, Any]], rng: random.Random,
             hard: Sequence[str | None] = ()) -> list[dict[str, Any]]:
    """(question, sentence, char span or None) pairs: the gold sentence, one without an
    answer from the same paragraph, and the question's `hard` negative where it has one."""
    text = {p["_id"]: p["text"] for p in passages()}
    out = []
    for n, q in enumerate(qs):
        sentences = split_sentences(shown_text(text[q["gold_passage_id"]]))
        gold = [s for s in sentences if contains(s, q["answers"])]
        span = locate(gold[0], q["answers"]) if gold else None
        if span is None:
            continue
        out.append({"question": q["question"], "sentence": gold[0], "span": span,
                    "answers": q["answers"]})
        others = [s for s in sentences if not contains(s, q["answers"])]
        if others:
            out.append({"question": q["question"], "sentence": rng.choice(others),
                        "span": None, "answers": q["answers"]})
        if n < len(hard) and hard[n]:
            out.append({"question": q["question"], "sentence": hard[n], "span": None,
                        "answers": q["answers"]})
    return out


def hard_negatives(index: Index, qs: Sequence[dict[str, Any]]) -> list[str | None]:
    """Each question's sentence of its best 3 hits (what `ask` ranks) that select.py's scorer
    before the judge ranks highest among those without a gold answer: the near misses the
    reader's lead must rank below the answer (bench/train_judge.py's hard negatives)."""
    return [next((s for s, g in zip(c["sentences"], c["gold"], strict=True) if not g), None)
            for c in candidates(index, qs)]


class Reader(torch.nn.Module):
    def __init__(self, model_dir: Path, rank: int) -> None:
        super().__init__()
        self.tokenizer, self.model = with_lora(model_dir, rank)
        self.head = torch.nn.Linear(self.model.config.hidden_size, 2)
        torch.nn.init.normal_(self.head.weight, std=0.02)

    def encode(self, pairs: Sequence[tuple[str, str]]) -> Any:
        return self.tokenizer([q for q, _ in pairs], [s for _, s in pairs], padding=True,
                              truncation="longest_first", max_length=MAX_TOKENS,
                              return_offsets_mapping=True, return_tensors="pt")

    def forward(self, batch: Any) -> torch.Tensor:
        """(batch, tokens, 2) start and end logits."""
        h = self.model(input_ids=batch["input_ids"],
                       attention_mask=batch["attention_mask"]).last_hidden_state
        return self.head(h)

    def arrays(self) -> dict[str, np.ndarray]:
        """The adapter file's contents (embed/export.py's `merge_adapter` format)."""
        out = lora_arrays(self)
        out["head.weight"] = self.head.weight.detach().numpy().astype(np.float32)
        out["head.bias"] = self.head.bias.detach().numpy().astype(np.float32)
        return out


def targets(batch: Any, items: Sequence[dict[str, Any]]) -> tuple[torch.Tensor, torch.Tensor,
                                                                    torch.Tensor]:
    """(start, end, allowed): token targets (0 = [CLS] for no answer) and which tokens may be
    picked ([CLS] and the sentence's)."""
    n, t = batch["input_ids"].shape
    start, end = torch.zeros(n, dtype=torch.long), torch.zeros(n, dtype=torch.long)
    allowed = torch.zeros(n, t, dtype=torch.bool)
    allowed[:, 0] = True
    for i, item in enumerate(items):
        seq = batch.sequence_ids(i)
        offsets = batch["offset_mapping"][i].tolist()
        in_sentence = [j for j in range(t) if seq[j] == 1]
        allowed[i, in_sentence] = True
        if item["span"] is None:
            continue
        a, b = item["span"]
        covered = [j for j in in_sentence if offsets[j][0] < b and offsets[j][1] > a]
        if covered:  # else the answer was cut off by truncation: [CLS]
            start[i], end[i] = covered[0], covered[-1]
    return start, end, allowed


def predict(reader: Reader, pairs: Sequence[tuple[str, str]]) -> list[tuple[str, float]]:
    """The reader's best span of each sentence, and its lead over "no answer here"."""
    reader.eval()
    out = []
    with torch.no_grad():
        for at in range(0, len(pairs), 32):
            part = pairs[at:at + 32]
            batch = reader.encode(part)
            logits = reader(batch).numpy()
            for i, (_, sentence) in enumerate(part):  # as `ask` reads a span (embed/reader)
                found = found_in(logits[i], batch.encodings[i], sentence)
                out.append(("", 0.0) if found is None else
                           (clean_span(sentence[found.start:found.end]), found.lead))
    reader.train()
    return out


def scores(preds: Sequence[str], answers: Sequence[Sequence[str]]) -> tuple[float, float]:
    f1 = [max(token_f1(p, g) for g in a) for p, a in zip(preds, answers, strict=True)]
    em = [max(exact_match(p, g) for g in a) for p, a in zip(preds, answers, strict=True)]
    return float(np.mean(f1)), float(np.mean(em))


def report(reader: Reader, rows_path: Path, held: Sequence[dict[str, Any]]) -> None:
    if rows_path.is_file():
        rows = [r for r in json.loads(rows_path.read_text())["rows"]["answerable"]
                if r.get("sentence") and not r["abstained"]]
        preds = [p for p, _ in predict(reader, [(r["question"], r["sentence"]) for r in rows])]
        ours = scores(preds, [r["answers"] for r in rows])
        model = scores([r["span"] for r in rows], [r["answers"] for r in rows])
        right = [i for i, r in enumerate(rows) if contains(r["sentence"], r["answers"])]
        golds = [rows[i]["answers"] for i in right]
        print(f"  {rows_path.name}: {len(rows)} answered questions, span F1/EM reader "
              f"{ours[0]:.3f}/{ours[1]:.3f}, model's quote {model[0]:.3f}/{model[1]:.3f}")
        print(f"    of the {len(right)} whose sentence holds gold: reader "
              f"{scores([preds[i] for i in right], golds)[0]:.3f}, model "
              f"{scores([rows[i]['span'] for i in right], golds)[0]:.3f}")
    gold = [h for h in held if h["span"] is not None]
    found = predict(reader, [(h["question"], h["sentence"]) for h in gold])
    f1, em = scores([p for p, _ in found], [h["answers"] for h in gold])
    wrong = [h for h in held if h["span"] is None]
    doubted = np.mean([lead < 0 for _, lead in predict(reader, [(h["question"], h["sentence"])
                                                               for h in wrong])])
    print(f"  held-out articles: {len(gold)} gold sentences, span F1 {f1:.3f} EM {em:.3f}, "
          f"lead < 0 on {np.mean([lead < 0 for _, lead in found]):.2f} of them and on "
          f"{doubted:.2f} of {len(wrong)} sentences without the answer")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", type=Path, default=None,
                    help="a SQuAD index (bench/qa.py's): add each question's hard negative")
    ap.add_argument("--out", type=Path, default=ADAPTER)
    ap.add_argument("--rows", type=Path, default=Path("/tmp/s12/tune-b1.json"))
    ap.add_argument("--epochs", type=float, default=2.0)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--limit", type=int, default=0, help="train on this many (a smoke run)")
    args = ap.parse_args()
    rng = seeded()
    train_qs, held_qs = judge_split()
    train_qs = train_qs[:args.limit or None]
    hard: list[str | None] = []
    if args.index is not None:
        idx = open_index(args.index, SQUAD / "corpus.jsonl")
        hard = hard_negatives(idx, train_qs)
        idx.close()
    train = examples(train_qs, rng, hard)
    held = examples(random.Random(1).sample(held_qs, min(400, len(held_qs))), rng)
    print(f"{len(train)} training pairs; {len(held)} held-out-article pairs", flush=True)
    reader = Reader(PACKAGED[DEFAULT_MODEL](), args.rank)

    def loss_of(ids: list[int]) -> torch.Tensor:
        items = [train[i] for i in ids]
        batch = reader.encode([(i["question"], i["sentence"]) for i in items])
        start, end, allowed = targets(batch, items)
        logits = reader(batch).masked_fill(~allowed[..., None], -1e4)
        return (torch.nn.functional.cross_entropy(logits[..., 0], start)
                + torch.nn.functional.cross_entropy(logits[..., 1], end)) / 2

    train_loop(reader, len(train), BATCH, args.epochs, loss_of, rng)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **reader.arrays())
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")
    report(reader, args.rows, held)


if __name__ == "__main__":
    main()
