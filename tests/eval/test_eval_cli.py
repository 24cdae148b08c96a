"""`ragline eval beir` end to end, through the installed command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCHEMA = {"dataset": str, "split": str, "queries": int, "ndcg@10": float, "recall@10": float,
          "recall@100": float, "mrr@10": float, "qps": float, "config": dict}


def ragline(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RAGLINE_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "ragline.cli.app", *args], env=env,
                          capture_output=True, text=True, timeout=300)


def test_eval_beir_json_end_to_end(beir_folder: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    proc = ragline("eval", "beir", str(beir_folder), "--json", cache=cache)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    for key, kind in SCHEMA.items():
        assert isinstance(result[key], kind), key
    assert result["dataset"] == "tiny-beir" and result["split"] == "test"
    assert result["queries"] == 6
    assert result["ndcg@10"] > 0.8  # each query names its topic
    assert result["recall@10"] == 1.0  # ids with "#" in them map back too
    config = result["config"]
    assert config["mode"] == "hybrid" and config["index_built_now"] is True
    assert {"model", "chunk_tokens", "bm25", "fusion"} <= set(config)

    # second run, other mode: the cached index is reused, nothing is embedded again
    proc = ragline("eval", "beir", str(beir_folder), "--mode", "lexical", "--json", cache=cache)
    assert proc.returncode == 0, proc.stderr
    again = json.loads(proc.stdout)
    assert again["config"]["index_built_now"] is False
    assert again["config"]["mode"] == "lexical"


def test_eval_beir_errors(tmp_path: Path) -> None:
    proc = ragline("eval", "beir", str(tmp_path), cache=tmp_path / "cache")
    assert proc.returncode != 0
    assert "corpus.jsonl is missing" in proc.stderr
