"""Where ragline keeps caches: one root, so one variable moves them all."""

from __future__ import annotations

import os
from pathlib import Path


def cache_home() -> Path:
    """$RAGLINE_CACHE, else $XDG_CACHE_HOME/ragline, else ~/.cache/ragline."""
    if os.environ.get("RAGLINE_CACHE"):
        return Path(os.environ["RAGLINE_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ragline"
