"""Which files an ingest reads: recursion, globs, skipped folders, named files."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers_core import documents, write_corpus

from ragline.index import Index
from ragline.ingest.discover import discover


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    for rel in ["a.md", "b.txt", "img.png", "sub/c.md", "sub/deep/d.txt", "drafts/e.md",
                ".git/f.md", "node_modules/g.md", ".ragline/h.txt"]:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f"text of {rel}")
    return root


def _rel(files: list[Path], root: Path) -> list[str]:
    return [f.relative_to(root).as_posix() for f in files]


def test_recursive_sorted_supported_only(tree: Path) -> None:
    files, missing = discover([tree])
    assert _rel(files, tree) == ["a.md", "b.txt", "drafts/e.md", "sub/c.md", "sub/deep/d.txt"]
    assert missing == []


def test_include_and_exclude(tree: Path) -> None:
    files, _ = discover([tree], include=["*.md"])
    assert _rel(files, tree) == ["a.md", "drafts/e.md", "sub/c.md"]
    files, _ = discover([tree], exclude=["*.txt"])
    assert _rel(files, tree) == ["a.md", "drafts/e.md", "sub/c.md"]
    for pattern in ("drafts/*", "*/drafts/*", "drafts/**"):  # relative to the folder named
        files, _ = discover([tree], exclude=[pattern])
        assert "drafts/e.md" not in _rel(files, tree), pattern
    files, _ = discover([tree], include=["sub/*.md"])
    assert _rel(files, tree) == ["sub/c.md"]


def test_named_files_and_missing_roots(tree: Path) -> None:
    files, missing = discover([tree / "img.png", tree / "a.md", tree / "a.md",
                               tree / "nope"])
    assert _rel(files, tree) == ["img.png", "a.md"]  # named: reported later, not dropped
    assert missing == [(str(tree / "nope"), "no such file or folder")]


def test_prune_with_a_filter_keeps_files_that_still_exist(tmp_path: Path, embedder) -> None:
    docs = tmp_path / "docs"
    files = write_corpus(docs, 3)
    (docs / "notes.md").write_text("# Notes\n\nMarkdown notes about kites.\n")
    with Index(tmp_path / "idx", embedder=embedder) as idx:
        assert idx.add([docs]).added == 4
        files[0].unlink()
        report = idx.add([docs], include=["*.md"], prune=True)
        assert report.removed == 1  # only the file that is gone
        indexed = {d.path for d in documents(idx)}
        assert indexed == {str(files[1]), str(files[2]), str(docs / "notes.md")}
