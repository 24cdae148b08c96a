"""`ragline ask` and `ragline chat`: answers from the indexed documents, streamed, with sources."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape

from ragline.cli.options import (
    IndexOpt,
    StoreOpt,
    WhereOpt,
    in_background,
    open_existing,
    warm_in_background,
)
from ragline.errors import RaglineError
from ragline.generate.factory import DEFAULT_MIN_CONFIDENCE  # light: settings only

if TYPE_CHECKING:  # imported where used: `ragline --help` loads no model code
    from ragline.generate.answer import Asker, AskResult

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

KOpt = typer.Option(None, "-k", "--top-k", min=1, max=50,
                    help="Passages given to the model (default: 5).")
UrlOpt = typer.Option(None, "--llm-url", help="OpenAI-compatible server, e.g. "
                      "http://127.0.0.1:8080/v1 (env RAGLINE_LLM_URL; default: embedded model).")
ServerModelOpt = typer.Option(None, "--llm-model", help="Model name on that server "
                              "(env RAGLINE_LLM_MODEL).")
KeyEnvOpt = typer.Option(None, "--api-key-env", help="Name of the environment variable that "
                         "holds the server's API key, e.g. OPENAI_API_KEY.")
ModelOpt = typer.Option(None, "--model", help="Embedded model: a GGUF file, or "
                        "qwen2.5-coder-0.5b (default) / smollm2 (env RAGLINE_LLM_GGUF).")
TimeoutOpt = typer.Option(None, "--llm-timeout", help="Seconds to wait for the server between "
                          "streamed pieces (default: 120).")
MaxTokOpt = typer.Option(None, "--max-tokens", help="Longest answer in tokens (default: 256).")
MinScoreOpt = typer.Option(None, "--min-score", help="Abstain when the best passage's cosine "
                           "similarity is below this (default: 0.35).")
ThreadsOpt = typer.Option(None, "--threads", help="CPU threads for the embedded model.")
ShortOpt = typer.Option(False, "--short", help="Answer with only the words that answer "
                        "(the quoted span, SQuAD-style) instead of the sentence that holds "
                        "them.")
FreeOpt = typer.Option(False, "--free", help="Let the model write its answer (no grammar) "
                       "instead of quoting the passages.")
MinConfOpt = typer.Option(None, "--min-confidence", help="Abstain, without asking the "
                          "model, when the confidence (0-1) that the passages' best sentence "
                          "answers is below this (default: "
                          f"{DEFAULT_MIN_CONFIDENCE}).")


def _asker(index: Path | None, store: str | None, where: str | None, k: int | None,
           stream: bool, short: bool = False, free: bool = False, **flags: object) -> Asker:
    from ragline.generate.answer import Asker
    from ragline.generate.factory import create_backend, load_config, reader_marks_spans
    from ragline.index import default_index_path

    idx = open_existing(index, store)
    warm_in_background(idx)
    try:
        cfg = load_config(index or default_index_path(), k=k, **flags)  # type: ignore[arg-type]
        backend = create_backend(cfg)
    except BaseException:
        idx.close()
        raise
    if free or not reader_marks_spans(backend):
        _preload(backend)  # the model writes the answer or marks its words
    _warm_pair_models()  # else the span reader does, and the model loads only if needed
    return Asker(idx, backend, k=cfg.k, min_score=cfg.min_score, stream=stream,
                 concise=short, where=where, extractive=not free,
                 min_confidence=cfg.min_confidence, per_passage=cfg.sentences)


def _preload(backend: object) -> None:
    """Load the embedded LLM (~3 s) while the question is embedded and searched; a failure
    here is raised again, with its message, by the first `generate`."""
    load = getattr(backend, "load", None)
    if load is not None:
        in_background("ragline-llm-preload", load)


def _warm_pair_models() -> None:
    """Load the answer-sentence judge and the span reader (~0.3 s each; their one-time
    exports ~6 s) while the question is searched: both rank the passages' sentences, and for
    the embedded model the reader marks the answer's words in the best one."""
    from ragline.generate.factory import pair_models

    for model in pair_models():
        in_background(f"ragline-{type(model).__name__}-warmup", model.warmup)


def _close(asker: Asker) -> None:
    asker.backend.close()
    close = getattr(asker.index, "close", None)
    if close:
        close()


def _write(piece: str) -> None:
    sys.stdout.write(piece)
    sys.stdout.flush()


def print_sources(result: AskResult) -> None:
    """The cited passages, by their [n], then anything the check removed or doubted."""
    if result.dropped_citations:
        gone = ", ".join(f"[{n}]" for n in result.dropped_citations)
        err_console.print(f"[yellow]note:[/] removed {gone}: only {len(result.retrieved)} "
                          "passages were given to the model")
    if result.note:
        err_console.print(f"[yellow]note:[/] {escape(result.note)}")
    if result.abstained:
        why = {"retrieval": "no passage is relevant enough",
               "confidence": f"confidence {result.confidence or 0:.2f} that the passages "
                             "answer is under the threshold"}.get(
            result.abstain_reason or "", "the model found no answer in the passages")
        console.print(f"[dim](abstained: {why}; best similarity {result.relevance:.2f})[/]")
        return
    if not result.citations:
        console.print("[dim](no passage could be matched to this answer)[/]")
        return
    console.print("\n[bold]Sources[/]")
    for c in result.citations:
        where = escape(c.source) + (f", page {c.page}" if c.page else "")
        flag = "" if c.supported else "  [yellow](does not appear to support the claim)[/]"
        how = {"model": "", "quote": "  [dim](quoted)[/]"}.get(c.by,
                                                               "  [dim](matched by content)[/]")
        snippet = " ".join(c.text.split())
        snippet = snippet[:200] + ("…" if len(snippet) > 200 else "")
        console.print(f"[bold cyan][{c.n}][/] [green]{where}[/]{flag}{how}")
        console.print(f"    [dim]{escape(snippet)}[/]")
    t = result.timings
    by = ("words marked by the span reader" if result.span_by == "reader" else
          f"{t['tokens_per_s']:.1f} tokens/s, model {escape(result.model)}")
    console.print(f"[dim]retrieve {t['retrieve_ms']:.0f} ms, first token "
                  f"{t['first_token_ms'] / 1e3:.1f} s, total {t['total_ms'] / 1e3:.1f} s, "
                  f"{by}[/]")


def _answer(asker: Asker, question: str, as_json: bool, stream: bool,
            follow_up: bool = False) -> AskResult:
    live = stream and not as_json
    shown: list[str] = []

    def write(piece: str) -> None:
        shown.append(piece)
        _write(piece)

    def span(piece: str) -> None:  # the quoted words inside the sentence, highlighted
        shown.append(piece)
        if console.is_terminal:
            console.print(f"[bold]{escape(piece)}[/]", end="")
        else:
            _write(piece)

    result = asker.ask(question, on_text=write if live else None, follow_up=follow_up,
                       on_span=span if live else None)
    if as_json:
        print(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
        return result
    if live:  # markers attributed after the stream ended go at its end
        from ragline.generate.citations import markers

        seen = set(markers("".join(shown)))
        late = "".join(f"[{n}]" for n in markers(result.answer) if n not in seen)
        _write(f" {late}\n" if late and not result.abstained else "\n")
    else:
        print(result.answer)
    print_sources(result)
    return result


def ask(
    question: str = typer.Argument(..., help="Your question, in your own words."),
    index: Path | None = IndexOpt,
    k: int | None = KOpt,
    as_json: bool = typer.Option(False, "--json", help="Print the answer and sources as JSON."),
    no_stream: bool = typer.Option(False, "--no-stream", help="Print the answer when complete."),
    llm_url: str | None = UrlOpt,
    llm_model: str | None = ServerModelOpt,
    api_key_env: str | None = KeyEnvOpt,
    model: str | None = ModelOpt,
    llm_timeout: float | None = TimeoutOpt,
    max_tokens: int | None = MaxTokOpt,
    min_score: float | None = MinScoreOpt,
    threads: int | None = ThreadsOpt,
    short: bool = ShortOpt,
    free: bool = FreeOpt,
    min_confidence: float | None = MinConfOpt,
    where: str | None = WhereOpt,
    store: str | None = StoreOpt,
) -> None:
    """Answer QUESTION from the indexed documents, quoting and citing the passage it used."""
    if not question.strip():
        raise RaglineError("the question is empty")
    asker = _asker(index, store, where, k, stream=not no_stream, url=llm_url, model=llm_model,
                   api_key_env=api_key_env, gguf=model, timeout=llm_timeout,
                   max_tokens=max_tokens, min_score=min_score, threads=threads, short=short,
                   free=free, min_confidence=min_confidence)
    try:
        _answer(asker, question, as_json, stream=not no_stream)
    finally:
        _close(asker)


def _questions() -> Iterator[str]:
    """Questions from the terminal (with a prompt) or, when piped, one per line of stdin."""
    interactive = sys.stdin.isatty()
    while True:
        try:
            line = input("\n? ") if interactive else sys.stdin.readline()
        except EOFError:
            return
        if not interactive and not line:
            return
        line = line.strip()
        if line.lower() in ("exit", "quit", ":q"):
            return
        if line:
            yield line


def chat(
    index: Path | None = IndexOpt,
    k: int | None = KOpt,
    as_json: bool = typer.Option(False, "--json", help="One JSON answer per question."),
    no_stream: bool = typer.Option(False, "--no-stream", help="Print answers when complete."),
    llm_url: str | None = UrlOpt,
    llm_model: str | None = ServerModelOpt,
    api_key_env: str | None = KeyEnvOpt,
    model: str | None = ModelOpt,
    llm_timeout: float | None = TimeoutOpt,
    max_tokens: int | None = MaxTokOpt,
    min_score: float | None = MinScoreOpt,
    threads: int | None = ThreadsOpt,
    short: bool = ShortOpt,
    free: bool = FreeOpt,
    min_confidence: float | None = MinConfOpt,
    where: str | None = WhereOpt,
    store: str | None = StoreOpt,
) -> None:
    """Ask questions in a loop; follow-ups are read in the context of the conversation."""
    asker = _asker(index, store, where, k, stream=not no_stream, url=llm_url, model=llm_model,
                   api_key_env=api_key_env, gguf=model, timeout=llm_timeout,
                   max_tokens=max_tokens, min_score=min_score, threads=threads, short=short,
                   free=free, min_confidence=min_confidence)
    if sys.stdin.isatty():
        err_console.print("[dim]Ask about your documents; Ctrl-D or 'exit' ends.[/]")
    try:
        for turn, question in enumerate(_questions()):
            if not sys.stdin.isatty() and not as_json:
                console.print(f"[bold]? {escape(question)}[/]")
            _answer(asker, question, as_json, stream=not no_stream, follow_up=turn > 0)
    finally:
        _close(asker)


def register(app: typer.Typer) -> None:
    for command in (ask, chat):
        app.command()(command)
