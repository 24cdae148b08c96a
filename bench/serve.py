"""HTTP load benchmark for `ragline serve` on loopback: search and ask under concurrent clients.

1. Starts `ragline serve` on 127.0.0.1 (a free port) over `--index DIR`; without `--index` it
   uses a SciFact index kept in a temp folder, built from ../shared/data/beir-scifact/corpus.jsonl
   first if it is not there yet (`--limit N` builds it from the first N abstracts only).
2. Warm-up: `--warmup-searches` (1,000, from 8 clients) and `--warmup-asks` (3), so the RSS
   read after it is the steady state (caches full, each search thread's connection open).
3. Load: `--clients` (50) asyncio + httpx clients for `--seconds` (60), each in a loop that
   stops by itself at the deadline: search 90% / ask 10% (`--ask-share`). Requests/s and
   p50/p95/p99 latency per endpoint (an ask is timed to its last event; req/s counts what
   ended within the window); errors, with the 503s of a full queue counted apart.
4. The server's resident memory (the process and its children) before warm-up, after it and at
   the end, and the growth from after warm-up to the end.
5. `ask` time to the first streamed token, p50 over `--first-token` (10) questions asked one
   after another to the warm server.

Prints one Markdown table (and `--json` writes the figures as JSON too). Loopback only.

    .venv/bin/python bench/serve.py                          # SciFact index, 50 clients, 60 s
    .venv/bin/python bench/serve.py --index /tmp/scifact-idx --seconds 20
    .venv/bin/python bench/serve.py --limit 500 --clients 20 --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

REPO = Path(__file__).resolve().parents[1]
DATA = (REPO / ".." / "shared" / "data" / "beir-scifact").resolve()
HOST = "127.0.0.1"  # loopback only, never another address
API_KEY = ""  # a read key made for the run (`ragline keys create`), revoked at its end
FALLBACK_QUESTIONS = [
    "What does vitamin D do for bone density?",
    "How do statins affect cholesterol?",
    "Is smoking linked to lung cancer?",
    "What causes antibiotic resistance?",
]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def load_avg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def rss_mib(pid: int) -> float:
    """Resident memory of a process and all its descendants, from /proc (Linux)."""
    total_kib = 0
    todo, seen = [pid], set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
            for task in Path(f"/proc/{p}/task").iterdir():
                kids = (task / "children").read_text().split()
                todo.extend(int(k) for k in kids)
        except (OSError, ValueError):
            continue
    return total_kib / 1024


def questions(n: int | None = None) -> list[str]:
    path = DATA / "queries.jsonl"
    texts: list[str] = []
    if path.is_file():
        with path.open(encoding="utf-8") as fh:
            texts = [json.loads(line)["text"] for line in fh if line.strip()]
    texts = texts or FALLBACK_QUESTIONS
    return texts[:n] if n else texts


# ---------- the index and the server ----------

def default_index(limit: int | None) -> Path:
    name = f"ragline-bench-serve-scifact{'-' + str(limit) if limit else ''}"
    return Path(tempfile.gettempdir()) / name


def ensure_index(path: Path, limit: int | None) -> None:
    """Build the SciFact index at `path` unless one with chunks is already there."""
    from ragline import Index

    with Index(path) as idx:
        if idx.status()["chunks"]:
            return
    corpus = DATA / "corpus.jsonl"
    if not corpus.is_file():
        raise SystemExit(f"no --index given and {corpus} is absent: nothing to serve")
    src = corpus
    tmp: Path | None = None
    if limit:
        tmp = Path(tempfile.mkdtemp(prefix="ragline-bench-corpus-"))
        src = tmp / "corpus.jsonl"
        with corpus.open(encoding="utf-8") as fin, src.open("w", encoding="utf-8") as fout:
            for i, line in enumerate(fin):
                if i >= limit:
                    break
                fout.write(line)
    log(f"building the index at {path} from {src} (the full corpus takes ~30 min on 2 cores) ...")
    t0 = time.perf_counter()
    try:
        with Index(path) as idx:
            report = idx.add([src])
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    log(f"  {report.chunks_written} chunks in {time.perf_counter() - t0:.0f} s")


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_server(index: Path, extra: list[str], log_path: Path, timeout_s: float) -> Server:
    port = free_port()
    ragline = Path(sys.executable).with_name("ragline")
    cmd = [str(ragline) if ragline.exists() else "ragline", "serve", "--index", str(index),
           "--host", HOST, "--port", str(port), *extra]
    log(f"starting: {' '.join(cmd)}")
    with log_path.open("wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT)
    url = f"http://{HOST}:{port}"
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise SystemExit(f"ragline serve exited with {proc.returncode}:\n{tail}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return Server(proc, url, log_path)
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise SystemExit(f"ragline serve did not answer /healthz in {timeout_s:.0f} s")
        time.sleep(0.25)


# ---------- requests ----------

@dataclass
class Stats:
    ok: list[float] = field(default_factory=list)  # seconds, successful requests
    in_window: int = 0  # successful requests that ended before the deadline
    spans: list[tuple[float, float]] = field(default_factory=list)  # (start, end), s into load
    errors: int = 0
    queue_full: int = 0  # 503: the server's queue is full
    error_kinds: dict[str, int] = field(default_factory=dict)

    def fail(self, kind: str) -> None:
        self.errors += 1
        self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1


def headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {API_KEY}"}


async def do_search(client: httpx.AsyncClient, query: str, k: int, mode: str | None) -> int:
    body: dict[str, Any] = {"query": query, "k": k}
    if mode:
        body["mode"] = mode
    resp = await client.post("/v1/search", json=body, headers=headers())
    if resp.status_code == 200:
        resp.json()
    return resp.status_code


async def do_ask(client: httpx.AsyncClient, question: str) -> tuple[int, float | None, str]:
    """Status, seconds to the first token (None without one), and the last event's name."""
    t0 = time.perf_counter()
    first: float | None = None
    event = ""
    last = ""
    async with client.stream("POST", "/v1/ask", json={"question": question},
                             headers={**headers(), "Accept": "text/event-stream"}) as resp:
        if resp.status_code != 200:
            await resp.aread()
            return resp.status_code, None, ""
        async for line in resp.aiter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                if event == "token" and first is None:
                    first = time.perf_counter() - t0
                last = event or last
    return 200, first, last


async def load_phase(url: str, clients: int, seconds: float, ask_share: float, k: int,
                     mode: str | None, seed: int, drain: float) -> dict[str, Any]:
    texts = questions()
    stats = {"search": Stats(), "ask": Stats()}
    start = time.monotonic()
    deadline = start + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    timeout = httpx.Timeout(300.0, connect=10.0)

    async def client_loop(i: int, client: httpx.AsyncClient) -> None:
        rng = random.Random(seed * 1000 + i)
        n = 0
        while time.monotonic() < deadline and n < 100_000:  # bounded either way
            n += 1
            kind = "ask" if rng.random() < ask_share else "search"
            text = rng.choice(texts)
            st = stats[kind]
            t0 = time.perf_counter()
            try:
                if kind == "search":
                    status = await do_search(client, text, k, mode)
                    last = "done"
                else:
                    status, _, last = await do_ask(client, text)
            except httpx.HTTPError as e:
                st.fail(type(e).__name__)
                continue
            dt = time.perf_counter() - t0
            if status == 503:
                st.queue_full += 1
                await asyncio.sleep(0.05)  # a real client would back off too
            elif status != 200:
                st.fail(f"HTTP {status}")
            elif last != "done":
                st.fail(f"stream ended with {last or 'nothing'!r}")
            else:
                st.ok.append(dt)
                end = time.monotonic()
                st.spans.append((end - dt - start, end - start))
                if end <= deadline:
                    st.in_window += 1

    t0 = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=timeout) as client:
        tasks = [asyncio.create_task(client_loop(i, client)) for i in range(clients)]
        # requests in flight at the deadline may finish within `drain` s; then they are cut
        done, pending = await asyncio.wait(tasks, timeout=seconds + drain)
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for t in done:
            if t.exception():
                raise t.exception()  # type: ignore[misc]
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "window_s": seconds, "stats": stats, "cut_off": len(pending)}


async def first_token_phase(url: str, n: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed + 7)
    texts = rng.sample(questions(), min(n, len(questions())))
    firsts: list[float] = []
    totals: list[float] = []
    failures = 0
    async with httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(300.0)) as client:
        for q in texts:
            t0 = time.perf_counter()
            status, first, last = await do_ask(client, q)
            if status == 200 and last == "done":
                totals.append(time.perf_counter() - t0)
                if first is not None:
                    firsts.append(first)
            else:
                failures += 1
    return {"first_token": firsts, "total": totals, "failures": failures, "asked": len(texts)}


async def warm_up(url: str, searches: int, asks: int) -> None:
    """Bring the server to its steady state before RSS is read: caches filled, every search
    thread's SQLite connection open (measured in-process: RSS flat after ~1,000 searches)."""
    texts = questions()
    async with httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(300.0)) as client:
        async def searcher(i: int) -> None:
            for j in range(i, searches, 8):
                status = await do_search(client, texts[j % len(texts)], 10, None)
                if status != 200:
                    raise SystemExit(f"warm-up search answered HTTP {status}")

        await asyncio.gather(*(searcher(i) for i in range(8)))
        for q in texts[-asks:] if asks else []:
            status, _, last = await do_ask(client, q)
            if status != 200 or last != "done":
                raise SystemExit(f"warm-up ask answered HTTP {status}, last event {last!r}")


# ---------- report ----------

def ms(samples: list[float], q: float) -> str:
    return f"{np.percentile(np.asarray(samples) * 1e3, q):,.0f}" if samples else "–"


def table(res: dict[str, Any]) -> str:
    load = res["load"]
    wall, window = load["wall_s"], load["window_s"]
    rows = [
        "| endpoint | ok | req/s | p50 ms | p95 ms | p99 ms | errors | 503 queue full |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in ("search", "ask"):
        st: Stats = load["stats"][name]
        errs = str(st.errors)
        if st.error_kinds:
            errs += " (" + ", ".join(f"{k}: {v}" for k, v in st.error_kinds.items()) + ")"
        rows.append(f"| {name} | {len(st.ok)} | {st.in_window / window:.1f} | {ms(st.ok, 50)} | "
                    f"{ms(st.ok, 95)} | {ms(st.ok, 99)} | {errs} | {st.queue_full} |")
    total_ok = sum(len(s.ok) for s in load["stats"].values())
    total_in = sum(s.in_window for s in load["stats"].values())
    rows.append(f"| all | {total_ok} | {total_in / window:.1f} | | | | | |")
    asks = sorted(end for _, end in load["stats"]["ask"].spans)
    ft = res["first_token"]
    rss = res["rss_mib"]
    growth = 100 * (rss["end"] - rss["after_warmup"]) / rss["after_warmup"]
    rows += [
        "",
        "| measure | value |",
        "|---|---|",
        f"| clients × seconds | {res['clients']} × {window:.0f}; requests in flight at the end "
        f"finished {wall - window:.1f} s later ({load['cut_off']} cut off) |",
        f"| index | {res['index']} ({res['chunks']:,} chunks) |",
        f"| first ask under load completed | "
        f"{f'{asks[0]:.1f} s into the run' if asks else 'never'} |",
        f"| server RSS before warm-up | {rss['before']:,.0f} MiB |",
        f"| server RSS after warm-up | {rss['after_warmup']:,.0f} MiB |",
        f"| server RSS at the end | {rss['end']:,.0f} MiB |",
        f"| RSS growth after warm-up | {growth:+.1f}% |",
        f"| ask first token p50 (warm, sequential, {ft['asked']} questions) | "
        f"{ms(ft['first_token'], 50)} ms |",
        f"| ask whole answer p50 (same) | {ms(ft['total'], 50)} ms |",
        f"| load average before / after | {res['load_before']} / {res['load_after']} |",
    ]
    if ft["failures"]:
        rows.append(f"| sequential asks that failed | {ft['failures']} |")
    return "\n".join(rows)


def as_json(res: dict[str, Any]) -> dict[str, Any]:
    def pct_ms(samples: list[float], q: float) -> float | None:
        return float(np.percentile(samples, q) * 1e3) if samples else None

    out = dict(res)
    load = dict(res["load"])
    load["stats"] = {
        name: {"ok": len(st.ok), "per_s": st.in_window / load["window_s"],
               "p50_ms": pct_ms(st.ok, 50), "p95_ms": pct_ms(st.ok, 95),
               "p99_ms": pct_ms(st.ok, 99), "errors": st.errors,
               "error_kinds": st.error_kinds, "queue_full": st.queue_full,
               "spans_s": [[round(a, 3), round(b, 3)] for a, b in st.spans]}
        for name, st in res["load"]["stats"].items()
    }
    out["load"] = load
    ft = res["first_token"]
    out["first_token"] = {"p50_ms": pct_ms(ft["first_token"], 50),
                          "total_p50_ms": pct_ms(ft["total"], 50),
                          "asked": ft["asked"], "failures": ft["failures"]}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--index", type=Path, help="an existing index (default: SciFact, built "
                    "into a temp folder when absent)")
    ap.add_argument("--limit", type=int, help="build the default index from the first N "
                    "SciFact abstracts only")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--ask-share", type=float, default=0.10)
    ap.add_argument("--k", type=int, default=10, help="results per search")
    ap.add_argument("--mode", help="search mode sent with each search (default: the server's)")
    ap.add_argument("--drain", type=float, default=120.0, help="seconds that requests in "
                    "flight at the end may take to finish before they are cut off")
    ap.add_argument("--warmup-searches", type=int, default=1000,
                    help="searches (8 clients) before the load, so RSS is read at steady state")
    ap.add_argument("--warmup-asks", type=int, default=3)
    ap.add_argument("--first-token", type=int, default=10, help="sequential asks to time")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--start-timeout", type=float, default=300.0)
    ap.add_argument("--serve-arg", action="append", default=[],
                    help="an extra argument for `ragline serve` (repeatable)")
    ap.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = ap.parse_args(argv)

    index = args.index
    if index is None:
        index = default_index(args.limit)
        ensure_index(index, args.limit)
    elif not index.exists():
        raise SystemExit(f"--index {index} does not exist")

    from ragline.serve.keys import KeyStore

    global API_KEY
    keys = KeyStore(index)
    key_info, API_KEY = keys.create("read", "bench/serve.py")
    workdir = Path(tempfile.mkdtemp(prefix="ragline-bench-serve-"))
    try:
        server = start_server(index, args.serve_arg, workdir / "server.log", args.start_timeout)
    except BaseException:
        keys.revoke(key_info.id)
        raise
    try:
        pid = server.proc.pid
        health = httpx.get(f"{server.url}/healthz", timeout=10).json()
        res: dict[str, Any] = {"clients": args.clients, "seconds": args.seconds,
                               "index": str(index), "chunks": int(health.get("chunks", 0)),
                               "rss_mib": {"before": rss_mib(pid)}}
        log(f"server {server.url} (pid {pid}), {res['chunks']} chunks; warming up ...")
        asyncio.run(warm_up(server.url, args.warmup_searches, args.warmup_asks))
        res["rss_mib"]["after_warmup"] = rss_mib(pid)
        res["load_before"] = load_avg()
        log(f"load: {args.clients} clients for {args.seconds:.0f} s ...")
        res["load"] = asyncio.run(load_phase(server.url, args.clients, args.seconds,
                                             args.ask_share, args.k, args.mode, args.seed,
                                             args.drain))
        res["load_after"] = load_avg()
        log(f"first token: {args.first_token} sequential asks ...")
        res["first_token"] = asyncio.run(first_token_phase(server.url, args.first_token,
                                                           args.seed))
        res["rss_mib"]["end"] = rss_mib(pid)
        if server.proc.poll() is not None:
            raise SystemExit(f"the server died during the run (exit {server.proc.returncode})")
    finally:
        server.stop()
        keys.revoke(key_info.id)
    print(table(res))
    if args.json:
        args.json.write_text(json.dumps(as_json(res), indent=2), encoding="utf-8")
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
