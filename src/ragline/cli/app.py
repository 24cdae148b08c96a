"""The `ragline` command: a thin layer over the Python API.

Failures print one line and exit non-zero; `--debug` (or RAGLINE_DEBUG=1) shows the traceback.
"""

from __future__ import annotations

import os
import sys

import click
import typer

from ragline.cli import ask, commands, evaluate, serve
from ragline.errors import RaglineError

try:  # typer >= 0.2x vendors its own click: catch its exceptions as well as click's
    from typer._click.exceptions import ClickException as _TyperClickException
except ImportError:  # pragma: no cover - older typer raises click's own
    _TyperClickException = click.ClickException

_EXIT = (click.exceptions.Exit, typer.Exit)
_USAGE = (click.ClickException, _TyperClickException)
_ABORT = (click.exceptions.Abort, typer.Abort, KeyboardInterrupt)

app = typer.Typer(
    name="ragline",
    help="Offline retrieval-augmented generation: ingest documents, search them, ask questions.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks and library logs."),
) -> None:
    """ragline: point it at your documents, then search or ask."""
    if debug:
        os.environ["RAGLINE_DEBUG"] = "1"


commands.register(app)
ask.register(app)
evaluate.register(app)
serve.register(app)


def _debug() -> bool:
    return os.environ.get("RAGLINE_DEBUG") == "1" or "--debug" in sys.argv


def main() -> None:
    """Entry point: run the app and turn expected failures into one clear line."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        code = app(prog_name="ragline", standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except _EXIT as e:
        sys.exit(e.exit_code)
    except _USAGE as e:
        e.show()
        sys.exit(e.exit_code)
    except _ABORT:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except (RaglineError, OSError, ValueError) as e:
        if _debug():
            raise
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    except Exception as e:
        if _debug():
            raise
        print(f"error: unexpected {type(e).__name__}: {e} (run with --debug for details)",
              file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
