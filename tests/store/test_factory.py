"""Which store a command opens: --store, $RAGLINE_STORE, the folder's config.toml, the folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragline.errors import RaglineError
from ragline.store.factory import open_store, resolve_location
from ragline.store.local import LocalStore


def test_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAGLINE_STORE", raising=False)
    monkeypatch.delenv("RAGLINE_INDEX", raising=False)
    folder = tmp_path / "idx"
    folder.mkdir()
    assert resolve_location(folder) == str(folder)
    (folder / "config.toml").write_text('[llm]\nk = 3\n[store]\nurl = "postgresql://a@h/db"\n')
    assert resolve_location(folder) == "postgresql://a@h/db"
    monkeypatch.setenv("RAGLINE_STORE", "postgresql://b@h/db")
    assert resolve_location(folder) == "postgresql://b@h/db"
    assert resolve_location(folder, "postgresql://c@h/db") == "postgresql://c@h/db"
    monkeypatch.delenv("RAGLINE_STORE")
    monkeypatch.setenv("RAGLINE_INDEX", str(folder))
    assert resolve_location() == "postgresql://a@h/db"


def test_bad_config_and_unknown_scheme_are_clear(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAGLINE_STORE", raising=False)
    (tmp_path / "config.toml").write_text("[store]\nurl = 5\n")
    with pytest.raises(RaglineError, match=r"config.toml: \[store\] url must be a string"):
        resolve_location(tmp_path)
    with pytest.raises(RaglineError, match="unknown store 'redis://h:6379'"):
        open_store("redis://h:6379")
    store = open_store(tmp_path / "new")
    assert isinstance(store, LocalStore)
    store.close()
