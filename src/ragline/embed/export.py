"""Export a packaged encoder to ONNX once, into ragline's model cache, and find it again safely.

The export needs torch and transformers (the reference model is traced), so it runs once per
model version: on the first ingest or search that wants the ONNX encoder. Every later process
loads the cached file with ONNX Runtime alone.

The cache key is a hash of the model's files, so a new package version gets a new export. A
variant is written in two steps: the model file (temp name, fsync, rename), then a manifest with
its size and sha256, written last and atomically. A variant with no manifest, or whose bytes do
not hash to the manifest's, is a partial or corrupt export: it is rebuilt, never loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from ragline.errors import RaglineError
from ragline.fsutil import atomic_write, file_lock, file_sha256
from ragline.paths import cache_home

#: bump when the exported graph changes (inputs, outputs, pooling), so old exports are ignored
EXPORT_VERSION = 2
SOURCE_FILES = ("config.json", "tokenizer.json", "model.safetensors", "pytorch_model.bin")
VARIANTS = ("fp32", "int8")
OPSET = 17


def onnx_cache() -> Path:
    return cache_home() / "onnx"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _stamp(model_dir: Path) -> list[Any]:
    """What `stat` says about the model's files: if this is unchanged, so is their hash."""
    out: list[Any] = []
    for name in SOURCE_FILES:
        path = model_dir / name
        if path.is_file():
            st = path.stat()
            out.append([name, st.st_size, st.st_mtime_ns, st.st_ino])
    return out


def source_digest(model_dir: Path) -> str:
    """sha256 over the model's weights, config and tokenizer.

    Hashing ~90 MB costs ~0.1 s, too much for every search, so the digest is remembered per
    folder together with the files' stat; a reinstalled package changes the stat, and then
    the content is hashed again.
    """
    model_dir = Path(model_dir).resolve()
    memo = onnx_cache() / "sources" / f"{_sha256(str(model_dir).encode())[:24]}.json"
    stamp = _stamp(model_dir)
    try:
        saved = json.loads(memo.read_text())
        if saved.get("stamp") == stamp:
            return str(saved["digest"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    h = hashlib.sha256()
    for name, *_ in stamp:
        h.update(name.encode() + b"\0" + file_sha256(model_dir / name).encode())
    digest = h.hexdigest()
    memo.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(memo, lambda tmp: tmp.write_text(json.dumps({"stamp": stamp,
                                                              "digest": digest})))
    return digest


def export_dir(model_dir: Path) -> Path:
    """The cache folder of this model version's exports."""
    label = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(model_dir).name)[:40] or "model"
    return onnx_cache() / f"{label}-{source_digest(model_dir)[:20]}-v{EXPORT_VERSION}"


def _manifest(folder: Path, variant: str) -> Path:
    return folder / f"{variant}.manifest.json"


def read_verified(folder: Path, variant: str) -> Path | None:
    """The variant's model file if its manifest vouches for it (size and sha256), else None.

    The file is hashed as a stream and handed to ONNX Runtime by path: reading it into bytes
    first held the model twice while the session loaded (cold search peak RSS ~+90 MB)."""
    try:
        manifest = json.loads(_manifest(folder, variant).read_text())
        path = folder / manifest["file"]
        if path.stat().st_size != manifest["size"] or file_sha256(path) != manifest["sha256"]:
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return path


def ensure_export(model_dir: str | Path, variant: str = "fp32",
                  exclude: tuple[str, ...] = (), adapter: Path | None = None) -> Path:
    """The verified ONNX model file of `model_dir`, exported (and for int8 quantised) if the cache
    has no sound copy. Concurrent processes wait on a lock and reuse the first one's work.

    With an `adapter` (low-rank deltas, see `merge_adapter`; fp32 only) the export is of the
    model with the deltas merged in, keyed by the adapter file's hash."""
    if variant not in VARIANTS:
        raise ValueError(f"ONNX variant must be one of {', '.join(VARIANTS)}, not {variant!r}")
    if adapter is not None and variant != "fp32":
        raise ValueError("an adapter is merged into the fp32 export only")
    model_dir = Path(model_dir)
    folder = export_dir(model_dir)
    key = variant if not exclude else f"{variant}-{_sha256(','.join(exclude).encode())[:8]}"
    if adapter is not None:
        key = f"{variant}-adapter-{file_sha256(adapter)[:12]}"
    found = read_verified(folder, key)
    if found is not None:
        return found
    folder.mkdir(parents=True, exist_ok=True)
    with file_lock(folder / "lock"):
        found = read_verified(folder, key)  # another process may have built it meanwhile
        if found is None:
            build(model_dir, folder, key, exclude, adapter)
            found = read_verified(folder, key)
    if found is None:
        raise RaglineError(f"the ONNX export in {folder} does not verify after rebuilding it")
    return found


def build(model_dir: Path, folder: Path, key: str, exclude: tuple[str, ...] = (),
          adapter: Path | None = None) -> None:
    """Write one variant ("fp32", "fp32-adapter-<hash>", or "int8" plus a hash of `exclude`)
    and its manifest (last)."""
    _manifest(folder, key).unlink(missing_ok=True)  # unvouched while the file is replaced
    target = folder / f"model-{key}.onnx"
    if key == "fp32" or adapter is not None:
        atomic_write(target, lambda tmp: export_fp32(model_dir, tmp, adapter))
    else:
        if read_verified(folder, "fp32") is None:  # the caller holds the folder's lock
            build(model_dir, folder, "fp32")
        atomic_write(target, lambda tmp: quantize_int8(folder / "model-fp32.onnx", tmp, exclude))
    record = {"file": target.name, "size": target.stat().st_size,
              "sha256": file_sha256(target), "variant": key, "fp32_layers": list(exclude),
              "opset": OPSET, "export_version": EXPORT_VERSION,
              "adapter": str(Path(adapter).resolve()) if adapter is not None else None,
              "source": str(Path(model_dir).resolve())}
    atomic_write(_manifest(folder, key),
                 lambda tmp: tmp.write_text(json.dumps(record, indent=2)))


def read_adapter(path: Path) -> dict[str, np.ndarray]:
    """An adapter file's arrays: `<module>.lora_A` (rank x in), `<module>.lora_B` (out x
    rank) for linear layers of the encoder, and whatever else its user keeps beside them."""
    try:
        with np.load(path) as data:
            return {name: data[name] for name in data.files}
    except (OSError, ValueError) as e:
        raise RaglineError(f"{path}: not a readable adapter ({e})") from None


def merge_adapter(model: Any, arrays: dict[str, np.ndarray]) -> int:
    """Add each low-rank delta B @ A to its linear layer's weight in place (what LoRA
    training learned, folded in so the graph is the plain model's); returns how many."""
    import torch

    modules = dict(model.named_modules())
    merged = 0
    for name in (n.removesuffix(".lora_A") for n in arrays if n.endswith(".lora_A")):
        layer = modules.get(name)
        if layer is None or not hasattr(layer, "weight"):
            raise RaglineError(f"adapter: the model has no linear layer {name!r}")
        if f"{name}.lora_B" not in arrays:
            raise RaglineError(f"adapter: {name} has lora_A but no lora_B")
        delta = torch.from_numpy(arrays[f"{name}.lora_B"].astype(np.float32)
                                 @ arrays[f"{name}.lora_A"].astype(np.float32))
        if tuple(delta.shape) != tuple(layer.weight.shape):
            raise RaglineError(f"adapter: {name} is {tuple(layer.weight.shape)} in the model, "
                               f"{tuple(delta.shape)} in the adapter")
        with torch.no_grad():
            layer.weight += delta
        merged += 1
    return merged


def export_fp32(model_dir: Path, dest: Path, adapter: Path | None = None) -> None:
    """Trace the reference model (eager attention, masked mean pooling and L2 norm inside the
    graph) with dynamic batch and sequence axes; with an adapter merged in first. Outputs the
    pooled `embedding` and each token's state (`hidden`, for a span head: embed/reader.py);
    a session computes only the outputs it is asked for."""
    try:
        import torch
        from transformers import AutoModel
        from transformers.utils import logging as hf_logging
    except ImportError as e:
        raise RaglineError(f"exporting the embedding model to ONNX needs torch and "
                           f"transformers once ({e}); install them or use the torch backend"
                           ) from None
    import warnings

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    model = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager")
    if adapter is not None:
        merge_adapter(model, read_adapter(adapter))
    model.eval()

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor]:
            hidden = self.model(input_ids=input_ids,
                                attention_mask=attention_mask).last_hidden_state
            weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=1), hidden

    # a padded row in the example keeps the mask a real input, not a traced constant
    ids = torch.tensor([[101, 7592, 2088, 102], [101, 7592, 102, 0]], dtype=torch.long)
    mask = (ids != 0).long()
    axes = {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
            "embedding": {0: "batch"}, "hidden": {0: "batch", 1: "tokens"}}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(Pooled(), (ids, mask), str(dest), input_names=list(axes)[:2],
                          output_names=list(axes)[2:], dynamic_axes=axes, opset_version=OPSET,
                          dynamo=False)


def quantize_int8(source: Path, dest: Path, exclude: tuple[str, ...] = ()) -> None:
    """Dynamic int8: MatMul weights with per-channel scales, activations quantised per batch;
    nodes named in `exclude` stay fp32."""
    import logging

    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.getLogger().setLevel(logging.ERROR)  # its advice to pre-process is for CNNs
    quantize_dynamic(str(source), str(dest), per_channel=True, weight_type=QuantType.QInt8,
                     op_types_to_quantize=["MatMul"], nodes_to_exclude=list(exclude),
                     extra_options={"DefaultTensorType": TensorProto.FLOAT})
    os.chmod(dest, 0o644)
