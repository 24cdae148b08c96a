"""A tiny BEIR folder, written by the tests themselves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

TOPICS = [
    ("honeybee", "Honeybees communicate the direction of flowers with a waggle dance."),
    ("volcano", "Volcanic eruptions release ash and sulfur dioxide into the stratosphere."),
    ("coffee", "Coffee brewing water should be between ninety and ninety-six degrees Celsius."),
    ("printing", "Gutenberg's printing press used movable metal type in the fifteenth century."),
    ("glacier", "Glaciers retreat when summer melting exceeds winter snowfall accumulation."),
    ("vaccine", "Vaccines train the immune system to recognise a pathogen's antigens."),
]


def write_beir(root: Path, docs_per_topic: int = 5) -> Path:
    """30 documents (6 topics x 5), one query per topic judged against its topic's documents."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "qrels").mkdir(exist_ok=True)
    corpus, qrels = [], ["query-id\tcorpus-id\tscore"]
    for t, (topic, sentence) in enumerate(TOPICS):
        for j in range(docs_per_topic):
            doc_id = f"d{t}{j}" if (t, j) != (0, 0) else "d#00"  # a '#' inside an id
            text = f"{sentence} Study {j} of {topic} looked at case {j * 7 + t}."
            corpus.append({"_id": doc_id, "title": f"{topic.title()} report {j}", "text": text})
            if j < 2:
                qrels.append(f"q{t}\t{doc_id}\t1")
    queries = [{"_id": f"q{t}", "text": f"what do we know about {topic}s"}
               for t, (topic, _) in enumerate(TOPICS)]
    queries.append({"_id": "unjudged", "text": "not in the qrels"})
    (root / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in corpus))
    (root / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (root / "qrels" / "test.tsv").write_text("\n".join(qrels) + "\n")
    return root


@pytest.fixture
def beir_folder(tmp_path: Path) -> Path:
    return write_beir(tmp_path / "tiny-beir")
