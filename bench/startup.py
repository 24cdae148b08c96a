"""Cold start-up benchmark: each command as a fresh `ragline` process, N runs, min and median
wall time and peak RSS.

Commands: `--help`, `status`, a lexical search, a hybrid search (the default encoder, and the
torch encoder for comparison: RAGLINE_EMBED_BACKEND=torch), and the first answer token of `ask`
(wall clock from process start to the first byte of the streamed answer, with the split the
command itself reports: retrieval, then model load + prefill to the first token).
Runs are interleaved (round-robin over the commands), so a load change hits all of them alike.
"Cold" is a new process; the OS page cache stays warm (dropping it would disturb other work).

Needs an index: `--index DIR` (e.g. one kept by `bench/ingest.py --keep DIR`), or it builds one
from the first `--limit` SciFact abstracts with `ragline ingest` (the ONNX export is made then).

    .venv/bin/python bench/startup.py --index /tmp/scifact-idx [--runs 5] [--no-ask] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DATA = (REPO / ".." / "shared" / "data" / "beir-scifact").resolve()
QUERY = "what causes muscle fatigue"
ASK = "What does vitamin D deficiency do to bones?"


def load_avg() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def ragline_cmd() -> list[str]:
    return [sys.executable, "-m", "ragline.cli.app"]


def environment(**extra: str) -> dict[str, str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", **extra)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
    return env


def run_once(args: list[str], env: dict[str, str], first_byte: bool = False) -> dict[str, Any]:
    """Wall seconds to exit (or to the first stdout byte) and the child's peak RSS."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(ragline_cmd() + args, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    assert proc.stdout is not None and proc.stderr is not None
    first = None
    if first_byte:
        head = proc.stdout.read(1)
        first = time.perf_counter() - t0 if head else None
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0,):
        raise SystemExit(f"{' '.join(args)} failed ({proc.returncode}): "
                         f"{err.decode(errors='replace')[-800:]}")
    return {"wall": wall, "first": first, "rss_mib": usage.ru_maxrss / 1024,
            "stdout": out.decode(errors="replace")}


def ask_split(stdout: str) -> dict[str, float]:
    """The split `ragline ask` prints: retrieval ms, then the first token's seconds."""
    m = re.search(r"retrieve (\d+) ms, first token ([\d.]+) s", stdout)
    return {"retrieve_s": int(m.group(1)) / 1e3, "first_token_s": float(m.group(2))} if m else {}


def build_index(folder: Path, limit: int) -> None:
    corpus = DATA / "corpus.jsonl"
    if not corpus.is_file():
        raise SystemExit(f"skip: {corpus} is not here (../shared/data/beir-scifact)")
    src = folder.parent / "corpus.jsonl"
    with corpus.open(encoding="utf-8") as fh, src.open("w", encoding="utf-8") as out:
        for i, line in enumerate(fh):
            if i >= limit:
                break
            out.write(line)
    print(f"building an index of {limit} SciFact abstracts in {folder}", file=sys.stderr)
    subprocess.run(ragline_cmd() + ["ingest", str(src), "-i", str(folder), "-q"], check=True,
                   env=environment())


def cases(index: Path, ask: bool, model: str | None) -> dict[str, tuple[list[str], dict]]:
    i = ["-i", str(index)]
    out: dict[str, tuple[list[str], dict]] = {
        "--help": (["--help"], {}),
        "status": (["status", *i], {}),
        "search --mode lexical": (["search", QUERY, "--mode", "lexical", *i], {}),
        "search (hybrid)": (["search", QUERY, *i], {}),
        "search (hybrid), torch encoder": (["search", QUERY, *i],
                                           {"RAGLINE_EMBED_BACKEND": "torch"}),
    }
    if ask:
        extra = ["--model", model] if model else []
        out["ask: first token"] = (["ask", ASK, *i, "--max-tokens", "8", *extra], {})
    return out


def measure(index: Path, runs: int, ask: bool, model: str | None) -> dict[str, Any]:
    table = cases(index, ask, model)
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in table}
    loads = []
    for name, (args, env) in table.items():  # warm the page cache and the ONNX export
        run_once(args, environment(**env), first_byte=name.startswith("ask"))
    for r in range(runs):
        loads.append(load_avg())
        print(f"round {r + 1}/{runs} (load {loads[-1]})", file=sys.stderr, flush=True)
        for name, (args, env) in table.items():
            samples[name].append(run_once(args, environment(**env),
                                          first_byte=name.startswith("ask")))
    out: dict[str, Any] = {"runs": runs, "load_avg": loads, "commands": {}}
    for name, got in samples.items():
        key = "first" if name.startswith("ask") else "wall"
        times = [g[key] for g in got if g[key] is not None]
        row = {"min_s": min(times), "median_s": statistics.median(times),
               "peak_rss_mib": max(g["rss_mib"] for g in got),
               "median_rss_mib": statistics.median(g["rss_mib"] for g in got)}
        if name.startswith("ask"):
            splits = [ask_split(g["stdout"]) for g in got]
            for part in ("retrieve_s", "first_token_s"):
                vals = [s[part] for s in splits if part in s]
                if vals:
                    row[part] = statistics.median(vals)
            if "first_token_s" in row:
                row["startup_s"] = row["median_s"] - row["first_token_s"]
        out["commands"][name] = row
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="cold start-up of ragline commands")
    ap.add_argument("--index", type=Path, default=None, help="an existing index to use")
    ap.add_argument("--limit", type=int, default=1000,
                    help="abstracts to index when no --index is given")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--no-ask", action="store_true", help="skip `ask` (needs the LLM)")
    ap.add_argument("--model", default=None, help="the LLM for `ask` (default: ragline's)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    tmp = None
    index = args.index
    try:
        if index is None:
            tmp = Path(tempfile.mkdtemp(prefix="ragline-startup-"))
            index = tmp / "index"
            build_index(index, args.limit)
        result = measure(index, args.runs, not args.no_ask, args.model)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    result["index"] = str(index)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"cold start-up, {args.runs} runs each, index {index}; load average per round: "
          f"{' | '.join(result['load_avg'])}")
    print(f"{'command':34s} {'min s':>7s} {'median s':>9s} {'peak RSS MiB':>13s}")
    for name, row in result["commands"].items():
        print(f"{name:34s} {row['min_s']:7.2f} {row['median_s']:9.2f} "
              f"{row['peak_rss_mib']:13.0f}")
        if "startup_s" in row:
            print(f"{'':4s}split (medians): start-up + index open {row['startup_s']:.2f} s, "
                  f"retrieval {row.get('retrieve_s', 0):.2f} s, LLM load + prefill "
                  f"{row['first_token_s'] - row.get('retrieve_s', 0):.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
