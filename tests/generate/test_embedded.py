"""The embedded llama.cpp backend on a real GGUF (SmolLM2-135M: fast, answers not judged)."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from ragline.generate.base import GenerationOptions, LLMBackend, LLMError
from ragline.generate.embedded import EmbeddedBackend

MESSAGES = [{"role": "user", "content": "Say hello."}]


@pytest.fixture(scope="module")
def small(smollm2: Path):
    b = EmbeddedBackend(smollm2, name="smollm2", n_ctx=1024, n_threads=1,
                        options=GenerationOptions(max_tokens=8))
    yield b
    b.close()


def test_is_a_backend(small: EmbeddedBackend) -> None:
    assert isinstance(small, LLMBackend)


def test_streams_and_matches_non_streaming(small: EmbeddedBackend) -> None:
    pieces = list(small.generate(MESSAGES, stream=True))
    assert len(pieces) > 1
    assert small.last_stats.completion_tokens == 8  # max_tokens reached: a full count
    assert small.last_stats.finish_reason == "length"
    whole = list(small.generate(MESSAGES, stream=False))
    assert whole == ["".join(pieces)]


def test_stopping_early_frees_the_model(small: EmbeddedBackend) -> None:
    gen = small.generate(MESSAGES)
    assert next(gen)
    gen.close()  # the consumer stops reading: generation is cancelled, the lock released
    assert "".join(small.generate(MESSAGES))


def test_no_tcp_port(small: EmbeddedBackend) -> None:
    """llama.cpp's HTTP server is bound to a Unix socket in a private folder, not to TCP."""
    small.load()
    address = small.listening_address or ""
    assert address.startswith("unix://"), address
    folder = Path(address.removeprefix("unix://")).parent
    assert folder.stat().st_mode & 0o077 == 0  # only we can enter it


def test_bad_messages_fail_clearly(small: EmbeddedBackend) -> None:
    with pytest.raises(LLMError, match="bad chat message"):
        list(small.generate([{"role": "tool", "content": "x"}]))


def test_missing_file() -> None:
    with pytest.raises(LLMError, match="not found"):
        EmbeddedBackend("/nonexistent/model.gguf")


def test_runtime_logs_are_silenced(smollm2: Path) -> None:
    """llama.cpp writes hundreds of lines to stderr by default; we show none."""
    code = (
        "from ragline.generate.embedded import EmbeddedBackend\n"
        "from ragline.generate.base import GenerationOptions\n"
        f"b = EmbeddedBackend({str(smollm2)!r}, n_ctx=512, n_threads=1, "
        "options=GenerationOptions(max_tokens=2))\n"
        "print(repr(''.join(b.generate([{'role': 'user', 'content': 'Hi'}]))))\n"
        "b.close()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, env={"PATH": "/usr/bin:/bin", "HOME": str(Path.home())})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip()
    assert out.stderr == ""


def _rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        line = next(x for x in fh if x.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads Linux's /proc")
def test_memory_does_not_grow_with_each_new_prompt(small: EmbeddedBackend) -> None:
    """llama.cpp's host-RAM prompt cache (8 GiB by default) kept every past prompt's KV state:
    ~9 MB per distinct 420-token prompt here. A server answering new questions all day must
    not grow with each one."""
    rng = random.Random(0)
    vocab = [f"word{i}" for i in range(2000)]

    def ask_new() -> None:
        text = " ".join(rng.choice(vocab) for _ in range(90))
        "".join(small.generate([{"role": "user", "content": text + "\nSummarise."}]))

    ask_new()  # warm: buffers sized once
    before = _rss_mib()
    for _ in range(4):
        ask_new()
    assert _rss_mib() - before < 15, "memory grew with each new prompt"
