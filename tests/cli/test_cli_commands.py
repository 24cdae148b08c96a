"""The real `ragline` command in a subprocess: help, plain progress, JSON, one-line errors."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from ragline.cli.app import app

RAGLINE = str(Path(sys.executable).with_name("ragline"))


def run(*args: str | Path, env: dict[str, str] | None = None,
        timeout: float = 180) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
                    **(env or {}))
    full_env.pop("RAGLINE_DEBUG", None)
    if env is None:
        full_env.pop("RAGLINE_INDEX", None)
    return subprocess.run([RAGLINE, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=full_env)


def _commands() -> list[str]:
    group = typer.main.get_command(app)
    return sorted(group.commands)  # type: ignore[attr-defined]


def test_core_commands_exist() -> None:
    assert {"ingest", "search", "status", "remove"} <= set(_commands())


@pytest.mark.parametrize("command", [None, *_commands()])
def test_every_command_has_help(command: str | None) -> None:
    r = run(*([command] if command else []), "--help")
    assert r.returncode == 0, r.stderr
    assert "Usage:" in r.stdout and "Traceback" not in r.stderr
    if command:
        helptext = r.stdout.split("Usage:", 1)[1]
        assert len(helptext.strip().splitlines()) > 2


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli-corpus")
    (root / "kettle.txt").write_text(
        "A whistling kettle sings when the water inside reaches a rolling boil.\n")
    (root / "moss.md").write_text(
        "# Moss\n\nMoss grows on the shaded north side of old stone walls.\n")
    (root / "bad.pdf").write_bytes(b"%PDF-1.4\n1 0 obj\n<< /Type /Cat")
    return root


@pytest.fixture(scope="module")
def ingested(corpus: Path, tmp_path_factory: pytest.TempPathFactory
             ) -> tuple[Path, subprocess.CompletedProcess[str]]:
    index = tmp_path_factory.mktemp("cli-idx") / "idx"
    return index, run("ingest", corpus, "--index", index)


def test_ingest_plain_lines_when_not_a_tty(ingested, corpus: Path) -> None:
    _, r = ingested
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert out[0] == "ingesting 3 files"
    assert f"added: {corpus / 'kettle.txt'} (1 chunks)" in r.stdout
    assert f"failed: {corpus / 'bad.pdf'}" in r.stdout
    assert out[-1].startswith("added 2, unchanged 0, updated 0, removed 0, failed 1 files;")
    assert "\x1b[" not in r.stdout  # no colour codes or bars in a pipe
    assert f"failed: {corpus / 'bad.pdf'}: corrupt or truncated PDF" in r.stderr
    assert "Traceback" not in r.stderr


def test_ingest_quiet_prints_only_the_summary(ingested, corpus: Path) -> None:
    index, _ = ingested
    r = run("ingest", corpus / "kettle.txt", corpus / "moss.md", "--index", index, "--quiet")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [r.stdout.strip()]
    assert r.stdout.startswith("added 0, unchanged 2, updated 0")
    assert r.stderr == ""


def test_search_json_schema(ingested, corpus: Path) -> None:
    index, _ = ingested
    r = run("search", "when does a kettle whistle", "-k", "2", "--json", "--index", index)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)  # stdout holds the JSON and nothing else
    assert set(data) == {"query", "results", "timings"}
    assert data["query"] == "when does a kettle whistle"
    assert {"embed_ms", "search_ms"} <= set(data["timings"])
    assert all(isinstance(v, float) for v in data["timings"].values())
    assert len(data["results"]) == 2
    for rank, res in enumerate(data["results"], start=1):
        assert set(res) == {"rank", "score", "chunk_id", "source", "page", "heading", "text",
                          "metadata"}
        assert res["rank"] == rank and isinstance(res["score"], float)
    top = data["results"][0]
    assert top["source"] == str(corpus / "kettle.txt") and top["page"] is None
    assert data["results"][1]["heading"] == "Moss"


def test_search_readable_and_index_from_env(ingested, corpus: Path) -> None:
    index, _ = ingested
    r = run("search", "moss on walls", "-k", "1", env={"RAGLINE_INDEX": str(index)})
    assert r.returncode == 0, r.stderr
    assert str(corpus / "moss.md") in r.stdout and "score" in r.stdout
    s = run("status", "--json", "--index", index)
    info = json.loads(s.stdout)
    assert info["documents"] == 2 and info["chunks"] == info["vectors"] == 2


def _one_line_error(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    return lines[0]


def test_remove_unknown_path_is_one_line(ingested, tmp_path: Path) -> None:
    index, _ = ingested
    line = _one_line_error(run("remove", tmp_path / "nope.txt", "--index", index))
    assert "nothing matched" in line


@pytest.mark.parametrize("command", [["search", "kettle"], ["status"], ["remove", "x.txt"]])
def test_reading_a_missing_index_is_an_error(command: list[str], tmp_path: Path) -> None:
    line = _one_line_error(run(*command, "--index", tmp_path / "nowhere"))
    assert line.startswith(f"error: no index at {tmp_path / 'nowhere'}")
    assert not (tmp_path / "nowhere").exists()  # a typo does not create an empty index


def test_ingest_of_nothing_fails(tmp_path: Path) -> None:
    r = run("ingest", tmp_path / "missing", "--index", tmp_path / "idx")
    assert r.returncode == 1
    assert f"{tmp_path / 'missing'}: no such file or folder" in r.stderr
    assert "Traceback" not in r.stderr


def test_mismatched_index_error_and_debug_traceback(ingested, tmp_path: Path) -> None:
    index, _ = ingested
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in index.iterdir():
        if f.is_file() and f.name != "lock":
            (broken / f.name).write_bytes(f.read_bytes())
    with sqlite3.connect(broken / "catalog.sqlite") as conn:
        conn.execute("UPDATE meta SET value = '8' WHERE key = 'dim'")
    conn.close()
    line = _one_line_error(run("search", "kettle", "--index", broken))
    assert line.startswith("error: index was built with vector dimension '8', not '384'")
    r = run("--debug", "search", "kettle", "--index", broken)
    assert r.returncode != 0
    assert "Traceback" in r.stderr and "IndexMismatchError" in r.stderr


def test_usage_error_exit_code(ingested) -> None:
    index, _ = ingested
    r = run("search", "kettle", "-k", "0", "--index", index)
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_rich_progress_on_a_terminal(corpus: Path, tmp_path: Path, embedder) -> None:
    """On a TTY the ingest draws bars for files and chunks (with a chunks/s rate)."""
    import io

    from rich.console import Console

    from ragline.cli.progress import PlainProgress, RichProgress, make_progress
    from ragline.index import Index

    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=120)
    progress = make_progress(console, quiet=False)
    assert isinstance(progress, RichProgress)
    assert isinstance(make_progress(Console(file=io.StringIO()), quiet=False), PlainProgress)
    with Index(tmp_path / "idx", embedder=embedder) as idx:
        report = idx.add([corpus], progress=progress)
    assert report.added == 2
    out = buf.getvalue()
    assert "files" in out and "chunks" in out and "chunks/s" in out
    assert "3/3" in out  # every file counted, the failed one included
