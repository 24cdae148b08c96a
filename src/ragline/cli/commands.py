"""Index commands: ingest, search, status, remove, migrate."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape

from ragline.cli.options import (
    IndexOpt,
    StoreOpt,
    WhereOpt,
    open_existing,
    open_index,
    warm_in_background,
)
from ragline.errors import RaglineError

if TYPE_CHECKING:  # the commands import what they use, so `--help` and `status` stay light
    from ragline.ingest.pipeline import IngestReport
    from ragline.types import SearchResult

# soft_wrap: a message or summary stays one line in a pipe or log, whatever the width
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def ingest(
    paths: list[Path] = typer.Argument(..., help="Files or folders (read recursively)."),
    index: Path | None = IndexOpt,
    include: list[str] = typer.Option([], "--include", help="Only files matching this glob."),
    exclude: list[str] = typer.Option([], "--exclude", help="Skip files matching this glob."),
    prune: bool = typer.Option(False, "--prune",
                               help="Remove indexed files under PATHS that are gone."),
    chunk_tokens: int | None = typer.Option(None, "--chunk-tokens",
                                            help="Chunk size in model tokens [default: 256]."),
    overlap: int | None = typer.Option(None, "--overlap",
                                       help="Overlap between chunks in tokens [default: 0]."),
    meta: list[str] = typer.Option([], "--meta", "-m", metavar="KEY=VALUE",
                                   help="A metadata field on every document of this ingest, "
                                   "e.g. --meta team=legal --meta year=2024 (typed as JSON: "
                                   "2024 a number, true a boolean, the rest text)."),
    store: str | None = StoreOpt,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the summary."),
) -> None:
    """Add or update documents: txt, md, html, pdf, docx, and BEIR-style jsonl.

    Every document gets the fields source, type, title, size, modified and pages (PDFs), plus
    yours from --meta, a Markdown file's YAML front matter and a JSONL line's "metadata"."""
    from ragline.cli.progress import make_progress
    from ragline.ingest.metadata import parse_assignments

    fields = parse_assignments(meta)
    with open_index(index, store, chunk_tokens=chunk_tokens, overlap=overlap) as idx:
        report = idx.add(paths, include=include, exclude=exclude, prune=prune,
                         progress=make_progress(console, quiet), meta=fields)
    print_report(report)
    if report.failed and not (report.added or report.updated or report.unchanged):
        raise typer.Exit(1)


def print_report(report: IngestReport) -> None:
    for path, reason in report.failed:
        err_console.print(f"[red]failed:[/] {escape(path)}: {escape(reason)}")
    console.print(
        f"added {report.added}, unchanged {report.unchanged}, updated {report.updated}, "
        f"removed {report.removed}, failed {len(report.failed)} files; "
        f"{report.chunks_written} chunks written ({report.chunks_embedded} embedded, "
        f"{report.chunks_reused} reused) in {report.seconds:.1f}s",
        highlight=False,
    )


def _snippet(text: str, query: str, width: int = 300) -> str:
    """A window of the chunk around the first query word it contains, words highlighted."""
    words = [w for w in re.findall(r"\w{3,}", query.lower())]
    flat = " ".join(text.split())
    lower = flat.lower()
    first = min((lower.find(w) for w in words if w in lower), default=0)
    start = max(0, first - width // 3)
    piece = flat[start : start + width]
    out = escape(("…" if start else "") + piece + ("…" if start + width < len(flat) else ""))
    for w in sorted(set(words), key=len, reverse=True):
        out = re.sub(rf"(?i)\b({re.escape(w)}\w*)", r"[bold yellow]\1[/]", out)
    return out


def print_hits(result: SearchResult) -> None:
    if not result.hits:
        console.print("no results (is the index empty? run `ragline ingest PATH`)")
        return
    for hit in result.hits:
        where = escape(hit.source) + (f", page {hit.page}" if hit.page else "")
        heading = f"  [dim]{escape(hit.heading)}[/]" if hit.heading else ""
        console.print(f"[bold cyan]{hit.rank}.[/] [green]{where}[/]{heading}  "
                      f"[dim]score {hit.score:.3f}[/]")
        console.print(f"   {_snippet(hit.text, result.query)}\n")
    t = result.timings
    lexical = f", bm25 {t['lexical_ms']:.1f} ms" if "lexical_ms" in t else ""
    console.print(f"[dim]embed {t['embed_ms']:.1f} ms, search {t['search_ms']:.1f} ms{lexical}[/]")


def search(
    query: str = typer.Argument(..., help="What to look for, in your own words."),
    k: int = typer.Option(5, "-k", "--top-k", min=1, max=1000, help="How many results."),
    index: Path | None = IndexOpt,
    as_json: bool = typer.Option(False, "--json", help="Print results as JSON."),
    mode: str = typer.Option("hybrid", "--mode",
                             help="hybrid (dense + BM25, fused), dense, or lexical (BM25)."),
    where: str | None = WhereOpt,
    store: str | None = StoreOpt,
) -> None:
    """Find the passages most relevant to QUERY."""
    if mode not in ("dense", "lexical", "hybrid"):
        raise typer.BadParameter("use dense, lexical or hybrid", param_hint="--mode")
    with open_existing(index, store) as idx:
        if mode != "lexical":
            warm_in_background(idx)
        result = idx.search(query, k=k, mode=mode, where=where)
    if as_json:
        print(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
    else:
        print_hits(result)


def status(
    index: Path | None = IndexOpt,
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
    store: str | None = StoreOpt,
    check: bool = typer.Option(False, "--check", help="Also verify that every chunk has its "
                               "vector and BM25 postings, and nothing else does."),
) -> None:
    """Show what the index holds: model, documents, chunks, metadata fields, size."""
    with open_existing(index, store) as idx:
        info = idx.status()
        if check:
            with idx.store.read() as reader:
                info["problems"] = reader.verify()
    if as_json:
        print(json.dumps(info, indent=2))
        return
    fields = info.pop("fields")
    info["fields"] = ", ".join(f"{name} ({kind})" for name, kind in fields.items()) or "-"
    problems = info.pop("problems", None)
    if problems is not None:
        info["check"] = "; ".join(problems) or "ok: catalog, vectors and postings agree"
    print_table(info)
    if problems:
        raise typer.Exit(1)


def print_table(info: dict[str, object]) -> None:
    """Key/value pairs as an aligned two-column table."""
    from rich.table import Table

    table = Table(show_header=False, box=None)
    for key, value in info.items():
        table.add_row(key, str(value))
    console.print(table)


def remove(
    sources: list[Path] = typer.Argument(..., help="Indexed files or folders to remove."),
    index: Path | None = IndexOpt,
    store: str | None = StoreOpt,
) -> None:
    """Remove documents (and their chunks) from the index."""
    with open_existing(index, store) as idx:
        n = idx.remove(sources)
    if n == 0:
        err_console.print("nothing matched: no indexed document is at those paths")
        raise typer.Exit(1)
    console.print(f"removed {n} documents")


def migrate(
    source: str = typer.Argument(..., help="Index to copy: a folder or a postgresql:// URL."),
    target: str = typer.Argument(..., help="Where to copy it: a folder or a URL; must be "
                                 "empty."),
) -> None:
    """Copy an index between stores (folder <-> PostgreSQL) without embedding anything again."""
    from ragline.cli.progress import make_progress
    from ragline.store import open_store
    from ragline.store.factory import is_url
    from ragline.store.migrate import copy_store

    if not is_url(source) and not (Path(source) / "catalog.sqlite").is_file():
        raise RaglineError(f"no index at {source}")
    src, dst = open_store(source), open_store(target)
    bar = make_progress(console, quiet=False)
    try:
        docs, chunks = copy_store(src, dst, on_start=bar.start,
                                  on_document=lambda path, n: bar.file_done(path, "copied", n))
    finally:
        bar.finish()
        src.close()
        dst.close()
    console.print(f"copied {docs} documents, {chunks} chunks from {escape(source)} to "
                  f"{escape(target)}", highlight=False)


def register(app: typer.Typer) -> None:
    for command in (ingest, search, status, remove, migrate):
        app.command()(command)
