"""`ragline ask` / `ragline chat` as a user runs them (subprocess; SmolLM2 for speed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

FAST = ["--model", "smollm2", "--threads", "1", "--max-tokens", "12"]


def ragline(*args: str, stdin: str | None = None, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "ragline.cli.app", *args], input=stdin,
                          capture_output=True, text=True, timeout=180, env=full_env)


def test_ask_json(tiny_index, smollm2: Path) -> None:
    out = ragline("ask", "What water temperature is best for brewing coffee?", "--index",
                  str(tiny_index.path), "--json", "-k", "2", *FAST)
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert set(d) >= {"question", "answer", "abstained", "citations", "retrieved", "model",
                      "timings"}
    assert d["model"] == "smollm2" and len(d["retrieved"]) == 2
    assert set(d["timings"]) == {"retrieve_ms", "first_token_ms", "total_ms", "tokens_per_s"}
    assert d["mode"] == "extractive" and {"span", "sentence", "confidence", "signals"} <= set(d)
    if not d["abstained"]:  # the answer is the sentence of a passage that holds the span
        assert d["span_by"] == "reader"  # the embedded model: the span reader marks it
        [c] = d["citations"]
        assert c["by"] == "quote" and d["span"] in " ".join(c["text"].split())
        assert d["answer"] == f"{d['sentence']} [{c['n']}]"


def test_ask_free_and_short_text(tiny_index, smollm2: Path) -> None:
    free = ragline("ask", "Who introduced movable-type printing to Europe?", "--index",
                   str(tiny_index.path), "--json", "-k", "2", "--free", *FAST)
    assert free.returncode == 0, free.stderr
    assert json.loads(free.stdout)["mode"] == "free"
    short = ragline("ask", "Who introduced movable-type printing to Europe?", "--index",
                    str(tiny_index.path), "-k", "2", "--short", "--min-confidence", "0",
                    *FAST)
    assert short.returncode == 0, short.stderr
    answer = short.stdout.splitlines()[0]
    assert answer.endswith("]") or "abstained" in short.stdout, short.stdout
    if answer.endswith("]"):  # the reader marked the words: no model speed to report
        assert "marked by the span reader" in short.stdout and "tokens/s" not in short.stdout


def test_config_file_in_the_index_is_read(tiny_index, smollm2: Path) -> None:
    (tiny_index.path / "config.toml").write_text("[llm]\nmin_score = 0.99\n")
    try:
        out = ragline("ask", "What water temperature is best for brewing coffee?", "--index",
                      str(tiny_index.path), "--json", *FAST)
    finally:
        (tiny_index.path / "config.toml").unlink()
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert d["abstained"] is True and d["abstain_reason"] == "retrieval"  # the file's threshold


def test_an_early_abstention_waits_for_the_warm_ups(tiny_index, smollm2: Path,
                                                    tmp_path: Path) -> None:
    """With an empty model cache the pair models are still being exported in background
    threads when the gate abstains; the process waits for them instead of aborting in a
    native library's teardown (it did, 2 runs of 3, while they were daemon threads)."""
    (tiny_index.path / "config.toml").write_text("[llm]\nmin_score = 0.99\n")
    try:
        out = ragline("ask", "What water temperature is best for brewing coffee?", "--index",
                      str(tiny_index.path), "--json", *FAST,
                      env={"RAGLINE_CACHE": str(tmp_path / "cache")})
    finally:
        (tiny_index.path / "config.toml").unlink()
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["abstain_reason"] == "retrieval"


def test_chat_reads_piped_questions(tiny_index, smollm2: Path) -> None:
    out = ragline("chat", "--index", str(tiny_index.path), "-k", "2", *FAST,
                  stdin="Who introduced movable-type printing?\nAnd when?\n")
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("? ") >= 2  # both questions echoed, each followed by an answer
    assert "And when?" in out.stdout


def test_server_down_is_one_clear_line(tiny_index, closed_port: int) -> None:
    out = ragline("ask", "What water temperature is best for brewing coffee?", "--index",
                  str(tiny_index.path), "--llm-url", f"http://127.0.0.1:{closed_port}/v1")
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach the LLM server" in lines[0], out.stderr


def test_missing_index_is_explained(tmp_path: Path) -> None:
    out = ragline("ask", "anything", "--index", str(tmp_path / "none"))
    assert out.returncode == 1 and "run `ragline ingest" in out.stderr
