"""The answer-sentence cross-encoder: the shipped adapter merged into the packaged encoder,
run by ONNX Runtime, scores as the torch model with the adapter does, and ranks the sentence
that answers above its neighbours."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ragline.embed.cross import ADAPTER
from ragline.embed.export import merge_adapter, read_adapter
from ragline.errors import RaglineError

pytest.importorskip("onnxruntime")

QUESTION = "When did Tesla move to New York?"
SENTENCES = ["Nikola Tesla was a Serbian-American inventor.",
             "He moved to New York in 1884 to work for Edison.",
             "Edison offered him a bonus for redesigning the generators.",
             "Tesla later set up his own laboratory on Fifth Avenue in New York."]


@pytest.fixture(scope="module")
def merged(judge):
    """The torch reference: the packaged model with the adapter added to its weights."""
    torch = pytest.importorskip("torch")
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(judge.model_dir), attn_implementation="eager")
    assert merge_adapter(model, read_adapter(ADAPTER)) == 36  # 6 layers x 6 linear layers
    model.eval()
    return model, torch


def test_onnx_scores_match_the_merged_torch_model(judge, merged) -> None:
    model, torch = merged
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(judge.model_dir))
    batch = tok([QUESTION] * len(SENTENCES), SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(input_ids=batch["input_ids"],
                       attention_mask=batch["attention_mask"]).last_hidden_state
    mask = batch["attention_mask"][..., None].float()
    pooled = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
    arrays = read_adapter(ADAPTER)
    expected = pooled.numpy() @ arrays["head.weight"] + arrays["head.bias"][0]
    np.testing.assert_allclose(judge.score(QUESTION, SENTENCES), expected, atol=1e-3)


def test_the_answering_sentence_scores_highest(judge) -> None:
    scores = judge.score(QUESTION, SENTENCES)
    assert int(np.argmax(scores)) == 1
    # the same sentence asked something it does not say falls behind the one that does
    other = judge.score("What did Edison offer Tesla?", SENTENCES)
    assert int(np.argmax(other)) == 2
    assert judge.score(QUESTION, []).shape == (0,)


def test_a_long_pair_is_cut_to_the_window(judge) -> None:
    long = "Tesla worked on alternating current motors. " * 60  # far over 128 tokens
    assert np.isfinite(judge.score(QUESTION, [long])).all()


def test_merge_refuses_what_does_not_fit(merged) -> None:
    model, _ = merged
    rank = 8
    wrong = {"encoder.layer.0.attention.self.query.lora_A": np.zeros((rank, 384)),
             "encoder.layer.0.attention.self.query.lora_B": np.zeros((100, rank))}
    with pytest.raises(RaglineError, match="attention.self.query"):
        merge_adapter(model, wrong)
    missing = {"encoder.layer.9.attention.self.query.lora_A": np.zeros((rank, 384)),
               "encoder.layer.9.attention.self.query.lora_B": np.zeros((384, rank))}
    with pytest.raises(RaglineError, match="no linear layer"):
        merge_adapter(model, missing)
    half = {"encoder.layer.0.attention.self.query.lora_A": np.zeros((rank, 384))}
    with pytest.raises(RaglineError, match="no lora_B"):
        merge_adapter(model, half)


def test_an_unreadable_adapter_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "judge.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(RaglineError, match="judge.npz"):
        read_adapter(bad)


def test_the_adapter_export_is_its_own_cached_variant(judge) -> None:
    from ragline.embed.export import ensure_export
    from ragline.fsutil import file_sha256

    path = ensure_export(judge.model_dir, adapter=ADAPTER)
    assert path.name == f"model-fp32-adapter-{file_sha256(ADAPTER)[:12]}.onnx"
    assert path != ensure_export(judge.model_dir)  # the plain encoder's export is apart
    with pytest.raises(ValueError, match="fp32"):
        ensure_export(judge.model_dir, "int8", adapter=ADAPTER)
