"""Settings precedence: flags > environment > <index>/config.toml > defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragline.errors import RaglineError
from ragline.generate.factory import DEFAULT_MIN_SCORE, create_backend, load_config
from ragline.generate.openai_http import OpenAIBackend


def test_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("RAGLINE_LLM_URL", "RAGLINE_LLM_MODEL", "RAGLINE_ASK_K", "RAGLINE_MIN_SCORE"):
        monkeypatch.delenv(var, raising=False)
    assert load_config(tmp_path).min_score == DEFAULT_MIN_SCORE  # no file: defaults
    (tmp_path / "config.toml").write_text(
        '[llm]\nurl = "http://file:1/v1"\nmodel = "file-model"\nk = 7\nmin_score = 0.5\n')
    cfg = load_config(tmp_path)
    assert (cfg.url, cfg.model, cfg.k, cfg.min_score) == ("http://file:1/v1", "file-model", 7,
                                                          0.5)
    monkeypatch.setenv("RAGLINE_LLM_URL", "http://env:2")
    monkeypatch.setenv("RAGLINE_ASK_K", "4")
    cfg = load_config(tmp_path)
    assert (cfg.url, cfg.model, cfg.k) == ("http://env:2", "file-model", 4)
    cfg = load_config(tmp_path, url="http://flag:3", k=None, model="flag-model")
    assert (cfg.url, cfg.model, cfg.k) == ("http://flag:3", "flag-model", 4)
    backend = create_backend(cfg)
    assert isinstance(backend, OpenAIBackend) and backend.url == "http://flag:3/v1/chat/completions"
    backend.close()


def test_bad_settings_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "config.toml").write_text("[llm]\ntemprature = 1\n")
    with pytest.raises(RaglineError, match="unknown setting 'temprature'"):
        load_config(tmp_path)
    (tmp_path / "config.toml").write_text("[llm]\n")
    monkeypatch.setenv("RAGLINE_ASK_K", "many")
    with pytest.raises(RaglineError, match=r"\$RAGLINE_ASK_K: k must be"):
        load_config(tmp_path)
