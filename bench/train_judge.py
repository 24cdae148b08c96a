"""Train the answer-sentence cross-encoder that ships as src/ragline/data/judge/ (embed/cross.py).

    .venv/bin/python bench/train_judge.py --index /tmp/ragline-bench-squad   # ~30 min, 2 cores

The packaged all-MiniLM-L6-v2 reads "[CLS] question [SEP] sentence [SEP]" (no segment ids),
mean-pools and L2-normalises as the embedder does, and a linear head scores the pair. Only
low-rank adapters (LoRA, rank 8, on the query/key/value/attention-output/intermediate/output
layers of all 6 layers) and the head are trained: 332k numbers, which ship as a 0.7 MB file,
merged into the weights when the model is exported (embed/export.py).

Data: SQuAD v1.1 dev questions (the only QA data here), kept apart from everything the
benchmarks report or tune on. Out: bench/qa.py's fixed sample and tuning split, every
paragraph either asks about, the unanswerable set's removed passages, and 8 whole articles
(`qa_data.judge_held_out`) whose other questions fit select.py's weights (bench/qa_select.py)
and measure the judge on articles it never saw. The rest (~6,200 questions with an answer in
their top 3 passages) train it: for each, the sentences of its best 3 hybrid hits (what `ask`
ranks), one holding a gold answer against the 3 that select.py's scorer without the judge
ranks highest and one more at random, softmax over the 5 (listwise). One epoch, AdamW 1e-3,
linear decay after 100 warm-up steps, 8 questions a step.

Results (2026-11-26, the adapter shipped; 2 cores, 28 min, 770 steps): the judge alone ranks
first a sentence holding a gold answer for 0.805 of 400 held-out-article questions and 0.80
of the tuning split, where select.py's scorer before it did 0.74 and 0.74. An earlier run of
the same recipe (the same split; hits from a deeper search, other random draws) gave 0.78 /
0.765. With the judge as one feature among select.py's (bench/qa_select.py): see there.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from qa_data import SQUAD, cached_embed, judge_split, open_index, sample_questions

from ragline.embed.cross import ADAPTER
from ragline.embed.factory import DEFAULT_MODEL, PACKAGED
from ragline.eval.qa import contains
from ragline.generate import select
from ragline.generate.compress import split_sentences
from ragline.generate.prompt import shown_text
from ragline.index import Index

RANK, LR, STEPS_WARM, GROUP, NEGATIVES = 8, 1e-3, 100, 8, 4
#: select.py's weights before the judge: they pick the hard negatives
BEFORE = np.array((4.709, -0.484, 0.938, 0.607, 0.22, 0.599, -0.731, 0.334, 2.311, 1.518, 0, 0))
TARGETS = ("query", "key", "value", "attention.output.dense", "intermediate.dense",
           "output.dense")


class LoRA(torch.nn.Module):
    """y = W x + B A x, W frozen, B starting at 0 (the model starts as packaged)."""

    def __init__(self, base: torch.nn.Linear, rank: int = RANK) -> None:
        super().__init__()
        self.base = base
        self.lora_A = torch.nn.Parameter(torch.randn(rank, base.in_features)
                                         / math.sqrt(base.in_features))
        self.lora_B = torch.nn.Parameter(torch.zeros(base.out_features, rank))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (x @ self.lora_A.T) @ self.lora_B.T


def candidates(index: Index, qs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each question's sentences of its best 3 passages, gold labels, and select.py's
    scores without the judge (for hard negatives)."""
    embed = cached_embed(index)
    out = []
    for q, found in zip(qs, index.search_many([q["question"] for q in qs], k=3), strict=True):
        hits = found.hits[:3]
        ranked = select.rank(q["question"], [split_sentences(shown_text(h.text)) for h in hits],
                             embed, [h.score for h in hits])
        ranked.sort(key=lambda s: -float(np.dot(s.features, BEFORE)))
        out.append({"question": q["question"], "sentences": [s.text for s in ranked],
                    "gold": [contains(s.text, q["answers"]) for s in ranked]})
    return out


def with_lora(model_dir: Path, rank: int = RANK) -> tuple[Any, torch.nn.Module]:
    """(tokenizer, encoder): the packaged encoder frozen, LoRA on its TARGETS layers."""
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(str(model_dir))
    for p in model.parameters():
        p.requires_grad_(False)
    for name, module in list(model.named_modules()):
        for attr in ("query", "key", "value", "dense"):
            child = getattr(module, attr, None)
            if isinstance(child, torch.nn.Linear) and f"{name}.{attr}".endswith(TARGETS):
                setattr(module, attr, LoRA(child, rank))
    return AutoTokenizer.from_pretrained(str(model_dir)), model


def lora_arrays(owner: torch.nn.Module) -> dict[str, np.ndarray]:
    """The LoRA factors of `owner.model`, named as embed/export.py's `merge_adapter` reads
    them (fp16: they ship)."""
    return {n.removeprefix("model.").replace(".base", ""): p.detach().numpy().astype(
        np.float16) for n, p in owner.named_parameters() if "lora_" in n}


class Judge(torch.nn.Module):
    def __init__(self, model_dir: Path) -> None:
        super().__init__()
        self.tokenizer, self.model = with_lora(model_dir)
        self.head = torch.nn.Linear(self.model.config.hidden_size, 1)
        torch.nn.init.normal_(self.head.weight, std=0.5)

    def forward(self, question: Sequence[str], sentence: Sequence[str]) -> torch.Tensor:
        b = self.tokenizer(list(question), list(sentence), padding=True, truncation=True,
                           max_length=128, return_tensors="pt")
        h = self.model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]
                       ).last_hidden_state
        mask = b["attention_mask"][..., None].float()
        pooled = torch.nn.functional.normalize((h * mask).sum(1) / mask.sum(1), dim=-1)
        return self.head(pooled).squeeze(-1)

    def score(self, question: str, sentences: Sequence[str]) -> np.ndarray:
        with torch.no_grad():
            return self([question] * len(sentences), sentences).numpy()

    def arrays(self) -> dict[str, np.ndarray]:
        """The adapter file's contents (embed/export.py's `merge_adapter` format)."""
        out = lora_arrays(self)
        out["head.weight"] = self.head.weight.detach().numpy().reshape(-1).astype(np.float32)
        out["head.bias"] = self.head.bias.detach().numpy().astype(np.float32)
        return out


def group(item: dict[str, Any], rng: random.Random) -> list[tuple[str, str]]:
    """One gold sentence, then the best-ranked wrong ones and one more at random."""
    pos = [s for s, g in zip(item["sentences"], item["gold"], strict=True) if g]
    neg = [s for s, g in zip(item["sentences"], item["gold"], strict=True) if not g]
    rest = neg[NEGATIVES - 1:]
    chosen = neg[:NEGATIVES - 1] + rng.sample(rest, min(1, len(rest)))
    return [(item["question"], s) for s in [rng.choice(pos), *chosen]]


def top1(judge: Judge, items: Sequence[dict[str, Any]]) -> float:
    judge.eval()
    hits = [item["gold"][int(np.argmax(judge.score(item["question"], item["sentences"])))]
            for item in items if item["sentences"]]
    judge.train()
    return float(np.mean(hits))


def seeded() -> random.Random:
    """Exit without the SQuAD data; else seed torch and the draws, 2 threads."""
    if not (SQUAD / "corpus.jsonl").is_file():
        sys.exit(f"SQuAD data not found at {SQUAD}")
    torch.manual_seed(0)
    torch.set_num_threads(2)
    return random.Random(0)


def train_loop(model: torch.nn.Module, n_items: int, per_step: int, epochs: float,
               loss_of: Callable[[list[int]], torch.Tensor], rng: random.Random) -> None:
    """AdamW on the trainable parameters (LR, weight decay 0.01, linear decay after
    STEPS_WARM warm-up steps) over shuffled passes of the items, `per_step` a step."""
    params = [p for p in model.parameters() if p.requires_grad]
    steps = max(1, int(n_items * epochs / per_step))
    opt = torch.optim.AdamW(params, lr=LR, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, s / STEPS_WARM) * max(0.0, 1 - s / steps))
    order: list[int] = []
    t0, avg = time.perf_counter(), 0.0
    for step in range(steps):
        if len(order) < per_step:
            order = list(range(n_items))
            rng.shuffle(order)
        loss = loss_of([order.pop() for _ in range(per_step)])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        avg = loss.item() if step == 0 else 0.98 * avg + 0.02 * loss.item()
        if step % 100 == 0:
            print(f"step {step}/{steps} loss {avg:.3f} {time.perf_counter() - t0:.0f}s",
                  flush=True)
    print(f"trained in {time.perf_counter() - t0:.0f}s", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", type=Path, default=Path("/tmp/ragline-bench-squad"))
    ap.add_argument("--out", type=Path, default=ADAPTER)
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--limit", type=int, default=0, help="train on this many (a smoke run)")
    args = ap.parse_args()
    rng = seeded()
    idx = open_index(args.index, SQUAD / "corpus.jsonl")
    train_qs, held_qs = judge_split()
    n_eval = min(args.limit, 400) if args.limit else 400
    train = [c for c in candidates(idx, train_qs[:args.limit or None]) if any(c["gold"])]
    held = candidates(idx, random.Random(1).sample(held_qs, n_eval))
    tune = candidates(idx, sample_questions(200, 2026, True)[:n_eval])
    print(f"{len(train)} training questions; {len(held)} held-out-article questions",
          flush=True)
    judge = Judge(PACKAGED[DEFAULT_MODEL]())

    def loss_of(ids: list[int]) -> torch.Tensor:
        batch = [group(train[i], rng) for i in ids]
        flat = [p for g in batch for p in g]
        scores = judge([q for q, _ in flat], [s for _, s in flat])
        loss, at = torch.zeros(()), 0
        for g in batch:  # the gold sentence is first in its group
            loss = loss - torch.log_softmax(scores[at:at + len(g)], 0)[0] / len(batch)
            at += len(g)
        return loss

    train_loop(judge, len(train), GROUP, args.epochs, loss_of, rng)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **judge.arrays())
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")
    for name, items in (("held-out articles", held), ("tuning split", tune)):
        print(f"  {name}: judge alone top-1 {top1(judge, items):.3f}, select.py without it "
              f"{np.mean([item['gold'][0] for item in items if item['sentences']]):.3f}")


if __name__ == "__main__":
    main()
