"""The shared docs-sample folder (13 real files), ingested once by the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers_core import assert_consistent, chunks_of, documents

from ragline.index import Index
from ragline.ingest.discover import discover

RAGLINE = str(Path(sys.executable).with_name("ragline"))
SAMPLE = (Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "docs-sample").resolve()
ENCRYPTED = SAMPLE / "pdf" / "libreoffice-writer-password.pdf"
PAGES = {"pdflatex-4-pages.pdf": 4, "multicolumn.pdf": 3, "google-doc-document.pdf": 1,
         "crazyones-pdfa.pdf": 1, "whitehead-introduction-to-mathematics-pg41568.pdf": 228}

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not SAMPLE.is_dir(), reason="../shared/data/docs-sample absent")]


def _ragline(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    env.pop("RAGLINE_INDEX", None)
    return subprocess.run([RAGLINE, *map(str, args)], capture_output=True, text=True,
                          timeout=600, env=env)


@pytest.fixture(scope="module")
def sample_index(tmp_path_factory: pytest.TempPathFactory
                 ) -> tuple[Path, subprocess.CompletedProcess[str]]:
    index = tmp_path_factory.mktemp("docs-sample") / "idx"
    return index, _ragline("ingest", SAMPLE, "--index", index)


def _documents() -> list[Path]:
    """The 13 sample documents (the folder also holds a README and license texts)."""
    return sorted(p for sub in ("pdf", "html", "txt", "markdown")
                  for p in (SAMPLE / sub).iterdir() if p.is_file())


def test_all_but_the_encrypted_pdf_are_indexed(sample_index, embedder) -> None:
    index, r = sample_index
    assert r.returncode == 0, r.stderr
    expected = _documents()
    assert len(expected) == 13
    everything, _ = discover([SAMPLE])  # plus README.md and licenses/*
    assert r.stderr.strip().splitlines() == [
        f"failed: {ENCRYPTED}: encrypted PDF: a password is needed to read it"]
    assert r.stdout.splitlines()[-1].startswith(
        f"added {len(everything) - 1}, unchanged 0, updated 0, removed 0, failed 1 files;")
    with Index(index, embedder=embedder) as idx:
        indexed = {d.path for d in documents(idx)}
        assert indexed >= {str(f) for f in expected} - {str(ENCRYPTED)}
        assert indexed == {str(f) for f in everything} - {str(ENCRYPTED)}
        assert_consistent(idx)


def test_pdf_pages_in_range(sample_index, embedder) -> None:
    index, _ = sample_index
    with Index(index, embedder=embedder) as idx:
        for name, n_pages in PAGES.items():
            pages = [c.page for c in chunks_of(idx, str(SAMPLE / "pdf" / name))]
            assert pages, name
            assert all(p is not None and 1 <= p <= n_pages for p in pages), name
            assert max(pages) == n_pages, name  # the last page has text too
        first = next(c.text for c in chunks_of(idx, str(SAMPLE / "pdf" / "multicolumn.pdf"))
                     if c.page == 1)
        assert first.startswith("Two-Column Document with Lorem Ipsum")
        html = str(SAMPLE / "html" / "squad-explorer-geology.html")
        texts = [c.text for c in chunks_of(idx, html)]
        assert any("Geology" in t for t in texts)
        assert not any("<script" in t or "function(" in t for t in texts)
        quickstart = next(d.path for d in documents(idx) if d.path.endswith("httpx-quickstart.md"))
        headings = {c.heading for c in chunks_of(idx, quickstart)}
        assert "QuickStart > Passing Parameters in URLs" in headings


def test_cynic_search_finds_the_devils_dictionary(sample_index) -> None:
    index, _ = sample_index
    r = _ragline("search", "what is the definition of a cynic", "-k", "5", "--json",
                 "--index", index)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert len(data["results"]) == 5
    assert {"embed_ms", "search_ms"} <= set(data["timings"])
    for res in data["results"]:
        assert set(res) == {"rank", "score", "chunk_id", "source", "page", "heading", "text",
                          "metadata"}
    assert any("devils-dictionary" in res["source"] for res in data["results"])


def test_unchanged_reingest_is_quick(sample_index) -> None:
    index, _ = sample_index
    r = _ragline("ingest", SAMPLE, "--index", index, "--quiet")
    assert r.returncode == 0
    everything, _ = discover([SAMPLE])
    assert r.stdout.startswith(f"added 0, unchanged {len(everything) - 1}, updated 0, removed 0, "
                               "failed 1 files; 0 chunks written (0 embedded")
