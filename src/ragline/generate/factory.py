"""Settings for `ask` and the backend they pick. Precedence: flags > environment > the index
folder's config.toml (`[llm]` table) > defaults.

    # <index>/config.toml
    [llm]
    url = "http://127.0.0.1:8080/v1"   # an OpenAI-compatible server; omit for the embedded model
    model = "qwen2.5:7b"               # the server's model name
    api_key_env = "OPENAI_API_KEY"
    gguf = "/models/any.gguf"          # embedded: a GGUF path, or qwen2.5-coder-0.5b / smollm2
    k = 5
    min_score = 0.35
    min_confidence = 0.40              # abstain when the passages seem not to answer
    sentences = 2                      # at most this many sentences a passage in the prompt
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ragline.errors import RaglineError
from ragline.generate.base import GenerationOptions, LLMBackend

if TYPE_CHECKING:
    from ragline.embed.adapted import AdaptedEncoder
    from ragline.embed.cross import CrossEncoder
    from ragline.embed.reader import SpanReader
    from ragline.generate.quote import Read
    from ragline.generate.select import Judge

T = TypeVar("T")

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, as a package
    import tomli as tomllib  # type: ignore[no-redef]

# The abstention gate on the best passage's cosine similarity (MiniLM), calibrated with
# `bench/qa.py --calibrate`: on SQuAD dev (2,067 passages) 0.35 turns away 4 of 200 answerable
# questions (2%) and lets 18 of 40 made-up unanswerable ones through (45%) to the model; on
# the example corpus 1 of 8 answerable (a borderline one) and 0 of 8 unanswerable. 0.40 would
# trade 6% / 25%; 0.45 11.5% / 12.5%.
DEFAULT_MIN_SCORE = 0.35
# The extractive answer's abstention threshold on the confidence that the passages answer
# (generate/select.py), chosen on the tuning split (`bench/qa.py --tune --unanswerable 40`,
# its 200 questions and 40 unanswerable ones): the most abstention on hard unanswerable
# questions while answering >= 85% of answerable ones there (with the span reader's lead among
# the signals: 0.88 / 0.75; 0.45 gave 0.84 / 0.80. Its first 100 alone chose 0.45, answering
# exactly 0.85, so the whole split decides).
DEFAULT_MIN_CONFIDENCE = 0.40
CONFIG_FILE = "config.toml"


@dataclass
class AskConfig:
    url: str | None = None
    model: str | None = None  # the server's model name (with url)
    api_key_env: str | None = None
    gguf: str | None = None  # embedded model: packaged name or GGUF path
    timeout: float = 120.0
    max_tokens: int = 256
    temperature: float = 0.0
    n_ctx: int = 4096
    threads: int | None = None
    k: int = 5
    min_score: float = DEFAULT_MIN_SCORE
    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    sentences: int = 2  # sentences of each passage in an extractive prompt (0: all)


ENV = {
    "url": "RAGLINE_LLM_URL", "model": "RAGLINE_LLM_MODEL",
    "api_key_env": "RAGLINE_LLM_API_KEY_ENV", "gguf": "RAGLINE_LLM_GGUF",
    "timeout": "RAGLINE_LLM_TIMEOUT", "max_tokens": "RAGLINE_LLM_MAX_TOKENS",
    "temperature": "RAGLINE_LLM_TEMPERATURE", "n_ctx": "RAGLINE_LLM_CTX",
    "threads": "RAGLINE_LLM_THREADS", "k": "RAGLINE_ASK_K", "min_score": "RAGLINE_MIN_SCORE",
    "min_confidence": "RAGLINE_MIN_CONFIDENCE", "sentences": "RAGLINE_ASK_SENTENCES",
}


def _coerce(name: str, value: Any, origin: str) -> Any:
    kind = {f.name: f.type for f in fields(AskConfig)}[name]
    try:
        if "float" in str(kind):
            return float(value)
        if "int" in str(kind):
            return int(value)
        return str(value)
    except (TypeError, ValueError):
        raise RaglineError(f"{origin}: {name} must be {kind}, got {value!r}") from None


def read_config_file(index_path: Path | None) -> dict[str, Any]:
    """The `[llm]` table of <index>/config.toml, or {} when there is none."""
    if index_path is None:
        return {}
    path = Path(index_path) / CONFIG_FILE
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise RaglineError(f"{path}: {e}") from e
    table = data.get("llm", {})
    if not isinstance(table, dict):
        raise RaglineError(f"{path}: [llm] must be a table")
    return table


def load_config(index_path: Path | None = None, **flags: Any) -> AskConfig:
    """Merge the layers; a flag left as None does not override anything."""
    cfg = AskConfig()
    names = {f.name for f in fields(AskConfig)}
    for key, value in read_config_file(index_path).items():
        if key not in names:
            raise RaglineError(f"{index_path}/{CONFIG_FILE}: unknown setting {key!r} in [llm] "
                               f"(known: {', '.join(sorted(names))})")
        setattr(cfg, key, _coerce(key, value, f"{index_path}/{CONFIG_FILE}"))
    for key, var in ENV.items():
        if os.environ.get(var):
            setattr(cfg, key, _coerce(key, os.environ[var], f"${var}"))
    for key, value in flags.items():
        if key not in names:
            raise TypeError(f"unknown setting {key}")
        if value is not None:
            setattr(cfg, key, _coerce(key, value, f"--{key.replace('_', '-')}"))
    return cfg


def create_backend(cfg: AskConfig) -> LLMBackend:
    """An OpenAI-compatible client when a URL is set, else the embedded GGUF model."""
    options = GenerationOptions(max_tokens=cfg.max_tokens, temperature=cfg.temperature)
    if cfg.url:
        from ragline.generate.openai_http import OpenAIBackend

        return OpenAIBackend(cfg.url, model=cfg.model, api_key_env=cfg.api_key_env,
                             timeout=cfg.timeout, options=options)
    from ragline.generate.embedded import EmbeddedBackend
    from ragline.generate.models import PACKAGED_LLMS, resolve_model

    name, path = resolve_model(cfg.gguf)
    return EmbeddedBackend(path, name=name, n_ctx=cfg.n_ctx, n_threads=cfg.threads,
                           options=options, packaged=name in PACKAGED_LLMS)


@lru_cache(maxsize=1)
def packaged_cross_encoder() -> CrossEncoder | None:
    """The answer-sentence cross-encoder (embed/cross.py) every asker of this process shares;
    None where the packaged encoder is not installed (sentences are then ranked without it).
    Its model loads on first use, or on `warmup`."""
    from ragline.embed.cross import CrossEncoder

    return _on_packaged_encoder(CrossEncoder)


@lru_cache(maxsize=1)
def packaged_span_reader() -> SpanReader | None:
    """The answer-span reader (embed/reader.py) every asker of this process shares; None
    where the packaged encoder is not installed (the model then picks the span)."""
    from ragline.embed.reader import SpanReader

    return _on_packaged_encoder(SpanReader)


def _on_packaged_encoder(make: Callable[[Path], T]) -> T | None:
    from ragline.embed.factory import DEFAULT_MODEL, PACKAGED

    try:
        return make(PACKAGED[DEFAULT_MODEL]())
    except RaglineError:
        return None


def reader_marks_spans(backend: object) -> bool:
    """Whether the packaged reader, not the model, marks the answer's words by default: for
    a small packaged model (`packaged`), whose quotes are worse; a GGUF file or a server is a
    model the user chose."""
    return bool(getattr(backend, "packaged", False))


def pair_models() -> list[AdaptedEncoder]:
    """The packaged pair models every asker uses (the judge and the reader rank sentences),
    to warm before the first question."""
    return [m for m in (packaged_cross_encoder(), packaged_span_reader()) if m is not None]


def packaged_judge() -> Judge | None:
    """What select.py ranks sentences with: the packaged cross-encoder's `score`."""
    model = packaged_cross_encoder()
    return model.score if model is not None else None


def packaged_reader() -> Read | None:
    """What quote.py takes the answer's span from: the packaged reader's `read`."""
    model = packaged_span_reader()
    return model.read if model is not None else None
