"""Find the files an ingest should read: folders recursively, filtered by globs."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from ragline.ingest.loaders import supported

_SKIP_DIRS = {".git", ".hg", ".svn", "__pycache__", "node_modules", ".venv", ".ragline"}


def _matches(path: Path, patterns: Sequence[str], root: Path | None = None) -> bool:
    """A glob matches the file name, the absolute path, or the path under the folder named."""
    names = [path.as_posix(), path.name]
    if root is not None:
        names.append(path.relative_to(root).as_posix())
    return any(fnmatch.fnmatch(n, p) for p in patterns for n in names)


def discover(roots: Iterable[str | Path], include: Sequence[str] = (),
             exclude: Sequence[str] = ()) -> tuple[list[Path], list[tuple[str, str]]]:
    """Return (files to ingest, [(path, reason)] for roots that do not exist).

    A file named directly is always returned, so an unsupported type is reported, not
    silently skipped; inside folders only supported types are taken.
    """
    files: list[Path] = []
    missing: list[tuple[str, str]] = []
    for root in roots:
        root = Path(root).expanduser().resolve()
        if root.is_file():
            if not _matches(root, exclude):
                files.append(root)
            continue
        if not root.is_dir():
            missing.append((str(root), "no such file or folder"))
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
            for name in sorted(filenames):
                path = Path(dirpath) / name
                if not supported(path) or _matches(path, exclude, root):
                    continue
                if include and not _matches(path, include, root):
                    continue
                files.append(path)
    return list(dict.fromkeys(files)), missing
