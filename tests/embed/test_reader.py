"""The answer-span reader: the span search over start/end logits, whole-word quoting, and the
shipped adapter merged into the packaged encoder and run by ONNX Runtime, which gives the
merged torch model's logits and marks the words that answer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ragline.embed.reader import ADAPTER, SpanReader, best_span, whole_words
from ragline.errors import RaglineError
from ragline.generate.extractive import clean_span

pytest.importorskip("onnxruntime")

QUESTION = "When did Tesla move to New York?"
SENTENCES = ["He moved to New York in 1884 to work for Edison.",
             "Edison offered him a bonus for redesigning the generators."]


def test_best_span_ends_at_or_after_its_start() -> None:
    start = np.array([-9.0, 0.0, 0.0, 3.0])
    end = np.array([-9.0, 3.0, 0.0, 1.0])
    # (3, 1) would score 6, but an answer cannot end before it starts
    assert best_span(start, end, [1, 2, 3]) == (3, 3)


def test_best_span_keeps_to_the_allowed_tokens_and_the_length_cap() -> None:
    start = np.array([-9.0, 5.0, 0.0, 0.5, 9.0])
    end = np.array([-9.0, 0.0, 1.0, 5.0, 9.0])
    assert best_span(start, end, [1, 2, 3]) == (1, 3)  # token 4 is not the sentence's
    assert best_span(start, end, [1, 2, 3], max_tokens=2) == (1, 2)
    assert best_span(start, end, []) is None


def test_the_best_span_is_found_even_where_cls_scores_higher() -> None:
    start = np.array([4.0, 1.0, 0.0])
    end = np.array([4.0, 0.0, 1.0])
    assert best_span(start, end, [1, 2]) == (1, 2)  # [CLS] (token 0) is never a span


def test_whole_words_widens_to_the_words_around() -> None:
    text = "The Denver Broncos, champions."
    at = text.index("nver")
    start, end = whole_words(text, at, at + 4)
    assert text[start:end] == "Denver"
    start, end = whole_words(text, text.index("Bron"), text.index("Bron") + 4)
    assert text[start:end] == "Broncos," and clean_span(text[start:end]) == "Broncos"
    assert whole_words(text, 0, len(text)) == (0, len(text))


def test_onnx_logits_match_the_merged_torch_model(reader) -> None:
    torch = pytest.importorskip("torch")
    from transformers import AutoModel, AutoTokenizer

    from ragline.embed.export import merge_adapter, read_adapter

    model = AutoModel.from_pretrained(str(reader.model_dir), attn_implementation="eager")
    arrays = read_adapter(ADAPTER)
    assert merge_adapter(model, arrays) == 36
    model.eval()
    tok = AutoTokenizer.from_pretrained(str(reader.model_dir))
    for (logits, enc), sentence in zip(reader.token_logits(QUESTION, SENTENCES), SENTENCES,
                                       strict=True):
        batch = tok(QUESTION, sentence, return_tensors="pt")
        assert batch["input_ids"][0].tolist() == enc.ids
        with torch.no_grad():
            hidden = model(**{k: batch[k] for k in ("input_ids", "attention_mask")}
                           ).last_hidden_state[0].numpy()
        expected = hidden @ arrays["head.weight"].T + arrays["head.bias"]
        np.testing.assert_allclose(logits, expected, atol=1e-3)


def test_the_reader_marks_the_words_that_answer(reader) -> None:
    found, other = reader.read(QUESTION, SENTENCES)
    assert found is not None
    text = SENTENCES[0]
    assert "1884" in text[found.start:found.end]
    # whole words of the sentence: it starts and ends at a space or at the sentence's ends
    assert found.start == 0 or text[found.start - 1] == " "
    assert found.end == len(text) or text[found.end] == " "
    # the reader leans to "no answer here" on a sentence that does not say when
    assert found.lead > 0 and other is not None and other.lead < 0
    [who] = reader.read("Who did Tesla go to New York to work for?", SENTENCES[:1])
    assert who is not None and clean_span(SENTENCES[0][who.start:who.end]) == "Edison"
    assert reader.read(QUESTION, []) == []


def test_a_judge_adapter_is_not_a_reader(tmp_path: Path) -> None:
    from ragline.embed.cross import ADAPTER as JUDGE
    from ragline.embed.factory import DEFAULT_MODEL, PACKAGED

    with pytest.raises(RaglineError, match="minilm-l6-squad-lora.npz"):
        SpanReader(PACKAGED[DEFAULT_MODEL](), adapter=JUDGE)
