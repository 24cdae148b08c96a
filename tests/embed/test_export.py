"""The ONNX export cache: keyed by the packaged model's hash, verified before every use,
rebuilt when partial or corrupt."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from ragline.embed import create_embedder
from ragline.embed.export import ensure_export, export_dir, read_verified, source_digest

pytest.importorskip("onnxruntime")


@pytest.fixture
def model_dir(embedder) -> Path:
    return embedder.path


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model_dir: Path) -> Path:
    """An empty cache holding a copy of the session's verified export (no re-export)."""
    source = export_dir(model_dir)
    assert read_verified(source, "fp32") is not None  # the session embedder exported it
    monkeypatch.setenv("RAGLINE_CACHE", str(tmp_path / "cache"))
    target = export_dir(model_dir)
    shutil.copytree(source, target)
    return target


def test_cached_export_is_reused(cache: Path, model_dir: Path) -> None:
    before = (cache / "model-fp32.onnx").stat().st_mtime_ns
    assert ensure_export(model_dir) == cache / "model-fp32.onnx"
    assert (cache / "model-fp32.onnx").stat().st_mtime_ns == before


def test_partial_exports_are_not_trusted(cache: Path) -> None:
    onnx = cache / "model-fp32.onnx"
    manifest = cache / "fp32.manifest.json"
    saved = manifest.read_text()
    manifest.unlink()  # the process died before the manifest was written
    assert read_verified(cache, "fp32") is None
    manifest.write_text(saved[: len(saved) // 2])  # a torn manifest
    assert read_verified(cache, "fp32") is None
    manifest.write_text(saved)
    data = onnx.read_bytes()
    onnx.write_bytes(data[: len(data) // 2])  # a truncated model
    assert read_verified(cache, "fp32") is None


def test_corrupt_export_is_rebuilt_not_used(cache: Path, model_dir: Path, embedder) -> None:
    onnx = cache / "model-fp32.onnx"
    data = bytearray(onnx.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte inside the weights: same size
    onnx.write_bytes(bytes(data))
    assert read_verified(cache, "fp32") is None
    rebuilt = create_embedder(backend="onnx")
    vec = rebuilt.embed_query("honeybees dance to tell where the flowers are")
    manifest = json.loads((cache / "fp32.manifest.json").read_text())
    assert read_verified(cache, "fp32") == onnx  # rebuilt: it verifies again
    assert onnx.read_bytes() != bytes(data)
    assert manifest["size"] == onnx.stat().st_size
    ref = embedder.embed_query("honeybees dance to tell where the flowers are")
    assert float((vec * ref).sum()) >= 0.9999


def test_changed_model_gets_a_new_export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         model_dir: Path, embedder) -> None:
    monkeypatch.setenv("RAGLINE_CACHE", str(tmp_path / "cache"))
    copy = tmp_path / "model"
    copy.mkdir()
    for name in ("tokenizer.json", "model.safetensors"):
        (copy / name).symlink_to(model_dir / name)
    config = json.loads((model_dir / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps(config))
    first = export_dir(copy)
    assert source_digest(copy) == source_digest(copy)  # remembered, stable
    config["layer_norm_eps"] = 1e-6  # a new package version: the config changed
    (copy / "config.json").write_text(json.dumps(config))
    second = export_dir(copy)
    assert second != first
    assert not second.exists()
    changed = create_embedder(str(copy), backend="onnx")
    vec = changed.embed_query("why do cats purr")
    assert read_verified(second, "fp32") is not None
    assert float((vec * embedder.embed_query("why do cats purr")).sum()) > 0.999
    assert np.isfinite(vec).all()
