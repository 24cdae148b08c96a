"""Errors a user can act on: each names the file, field or setting at fault."""

from __future__ import annotations


class RaglineError(Exception):
    """Base class: the CLI prints these as one line, without a traceback."""


class LoadError(RaglineError):
    """A file could not be turned into text; the ingest skips it and goes on."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class IndexMismatchError(RaglineError):
    """The index was built with another embedding model, dimension or pooling."""


class IndexLockedError(RaglineError):
    """Another process is writing to the same index."""
