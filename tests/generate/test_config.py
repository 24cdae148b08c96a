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


def test_the_reader_marks_spans_only_for_a_packaged_model(tmp_path: Path, smollm2: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    """A small packaged model gets the span reader; a GGUF file or a server the user chose
    marks the answer's words itself."""
    from ragline.generate.answer import Asker
    from ragline.generate.factory import reader_marks_spans

    monkeypatch.delenv("RAGLINE_LLM_URL", raising=False)
    packaged = create_backend(load_config(tmp_path, gguf="smollm2"))
    chosen = create_backend(load_config(tmp_path, gguf=str(smollm2)))
    server = create_backend(load_config(tmp_path, url="http://127.0.0.1:9/v1"))
    assert [reader_marks_spans(b) for b in (packaged, chosen, server)] == [True, False, False]
    assert Asker(None, packaged).span_by == "reader"  # type: ignore[arg-type]
    assert Asker(None, server).span_by == "model"  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="span_by"):
        Asker(None, server, span_by="judge")  # type: ignore[arg-type]
    for b in (packaged, chosen, server):
        b.close()
