"""`ragline eval`: measure retrieval on a BEIR-style folder."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from ragline.cli.commands import print_table

if TYPE_CHECKING:  # rich.progress loads only when a bar is drawn
    from rich.progress import Progress, TaskID

eval_app = typer.Typer(help="Measure retrieval quality.", no_args_is_help=True)
err_console = Console(stderr=True)


class _QueryBar:
    """A progress bar over the queries, on stderr so `--json` output stays clean."""

    def __init__(self, console: Console, label: str = "queries") -> None:
        self.console = console
        self.label = label
        self.bar: Progress | None = None
        self.task: TaskID | None = None

    def start(self, total: int) -> None:
        if not self.console.is_terminal:
            print(f"running {total} {self.label}", file=self.console.file, flush=True)
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.bar = Progress(TextColumn(f"[bold]{self.label:<9}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), console=self.console, transient=True)
        self.bar.start()
        self.task = self.bar.add_task(self.label, total=total)

    def advance(self, n: int) -> None:
        if self.bar is not None and self.task is not None:
            self.bar.advance(self.task, n)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()


@eval_app.command("beir")
def beir(
    folder: Annotated[Path, typer.Argument(
        help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv.")],
    split: Annotated[str, typer.Option("--split", help="Which qrels/<split>.tsv to score.")]
    = "test",
    mode: Annotated[str, typer.Option("--mode", help="dense, lexical or hybrid.")] = "hybrid",
    k: Annotated[int, typer.Option("-k", min=10, max=1000,
                                   help="Documents retrieved per query.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Index a BEIR corpus (cached), run its queries, report nDCG@10, recall, MRR, queries/s."""
    from rich.table import Table

    from ragline.cli.progress import make_progress
    from ragline.eval.beir import evaluate
    from ragline.retrieve.hybrid import MODES

    if mode not in MODES:
        raise typer.BadParameter(f"use one of {', '.join(MODES)}", param_hint="--mode")
    bar = _QueryBar(err_console)
    try:  # progress lines go to stderr, so stdout holds only the result
        with contextlib.redirect_stdout(sys.stderr):
            result = evaluate(folder, split=split, mode=mode, k=k,
                              progress=make_progress(err_console, quiet=False),
                              on_start=bar.start, on_query=bar.advance)
    finally:
        bar.stop()
    if as_json:
        print(json.dumps(result, indent=2))
        return
    table = Table(title=f"{result['dataset']} ({split}, {result['queries']} queries, {mode})")
    for col in ("nDCG@10", "recall@10", "recall@100", "MRR@10", "queries/s"):
        table.add_column(col, justify="right")
    table.add_row(*(f"{result[m]:.4f}" for m in ("ndcg@10", "recall@10", "recall@100",
                                                "mrr@10")), f"{result['qps']:.1f}")
    Console().print(table)


@eval_app.command("qa")
def qa(
    file: Annotated[Path, typer.Argument(
        help='JSON Lines: {"question", "answers": [...], "gold_passage_id"?} per line.')],
    index: Annotated[Path | None, typer.Option(
        "--index", "-i", envvar="RAGLINE_INDEX", help="Index folder holding the passages.")]
    = None,
    model: Annotated[str | None, typer.Option(
        "--model", help="GGUF path or packaged model name (else the configured one).")] = None,
    url: Annotated[str | None, typer.Option(
        "--url", help="An OpenAI-compatible server to use instead.")] = None,
    k: Annotated[int | None, typer.Option("-k", min=1, max=50,
                                          help="Passages given to the model.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    short: Annotated[bool, typer.Option(
        "--short", help="Score `ask --short` answers (only the words that answer).")] = False,
) -> None:
    """Run `ask` on each question: exact match, F1, gold recall@k, citation precision."""
    from ragline.eval.qa import evaluate_qa, load_questions
    from ragline.generate.answer import Asker
    from ragline.generate.factory import create_backend, load_config
    from ragline.index import Index, default_index_path

    questions = load_questions(file)
    path = index or default_index_path()
    cfg = load_config(path, gguf=model, url=url, k=k)
    bar = _QueryBar(err_console, "questions")
    with Index(path) as idx:
        backend = create_backend(cfg)
        try:
            bar.start(len(questions))
            summary, _ = evaluate_qa(Asker(idx, backend, k=cfg.k, min_score=cfg.min_score,
                                           stream=False, concise=short), questions,
                                       bar.advance)
        finally:
            bar.stop()
            backend.close()
    summary = {"file": str(file), "model": backend.name, "k": cfg.k, **summary}
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    print_table(summary)


def register(app: typer.Typer) -> None:
    app.add_typer(eval_app, name="eval")
