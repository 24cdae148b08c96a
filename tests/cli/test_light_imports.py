"""What a cold command loads: a search runs on ONNX Runtime without torch or transformers;
`--help`, `status`, `remove` and a lexical search load no model at all."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")

HEAVY = ("torch", "transformers", "onnxruntime", "tokenizers", "sentence_transformers")
PROBE = f"""
import json, sys
sys.argv = ["ragline", *json.loads(sys.argv[1])]
try:
    from ragline.cli.app import main
    main()
finally:
    loaded = sorted(m for m in {HEAVY!r} if m in sys.modules)
    sys.stderr.write("LOADED=" + json.dumps(loaded) + "\\n")
"""


def loaded(*args: str | Path) -> tuple[list[str], subprocess.CompletedProcess[str]]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    env.pop("RAGLINE_EMBED_BACKEND", None)
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps([str(a) for a in args])],
                          capture_output=True, text=True, timeout=120, env=env)
    line = [x for x in done.stderr.splitlines() if x.startswith("LOADED=")]
    assert line, done.stderr
    return json.loads(line[-1].removeprefix("LOADED=")), done


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory, embedder) -> Path:
    from ragline import Index

    docs = tmp_path_factory.mktemp("docs")
    (docs / "bees.md").write_text("# Bees\n\nHoneybees dance to show where the flowers are.\n")
    (docs / "coffee.txt").write_text("Coffee is brewed with water just off the boil.\n")
    folder = tmp_path_factory.mktemp("index") / "idx"
    with Index(folder, embedder=embedder) as idx:  # the ONNX encoder: its export is cached
        assert idx.add([docs]).added == 2
    return folder


def test_hybrid_search_needs_no_torch(index: Path) -> None:
    mods, done = loaded("search", "where do bees dance", "-i", index, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["results"][0]["source"].endswith("bees.md")
    assert "torch" not in mods and "transformers" not in mods
    assert "onnxruntime" in mods  # the light path did run


@pytest.mark.parametrize("args", [
    ["--help"],
    ["status"],
    ["search", "coffee boil", "--mode", "lexical", "--json"],
    ["remove", "/nowhere/at/all.txt"],
])
def test_commands_that_embed_nothing_load_no_model(index: Path, args: list[str]) -> None:
    mods, done = loaded(*args, *(["-i", index] if args != ["--help"] else []))
    assert done.returncode in (0, 1), done.stderr  # remove of nothing exits 1 by design
    assert mods == [], mods
    if args[0] == "search":
        assert json.loads(done.stdout)["results"][0]["source"].endswith("coffee.txt")
