"""Bad input: each bad file gets a clear reason naming it; the other files are still indexed."""

from __future__ import annotations

from pathlib import Path

from helpers_core import assert_consistent, documents, make_pdf

from ragline.index import Index
from ragline.ingest.loaders.base import MAX_LINE_CHARS
from ragline.ingest.progress import IngestProgress


def test_bad_files_are_reported_and_the_rest_indexed(tmp_path: Path, embedder) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    good = docs / "a-good.txt"
    good.write_text("Otters hold hands while they sleep so they do not drift apart.\n")
    pdf = make_pdf([["The first page of a report about lighthouses."],
                    ["The second page of the report."]])
    (docs / "b-good.pdf").write_bytes(pdf)
    (docs / "c-truncated.pdf").write_bytes(pdf[: len(pdf) // 2])
    (docs / "d-binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    (docs / "e-empty.md").write_bytes(b"")
    (docs / "f-blank.txt").write_bytes(b"  \n\n \t\n")
    latin = docs / "g-latin1.txt"
    latin.write_bytes("Crème brûlée à la façon de grand-mère, très bon.\n".encode("latin-1"))
    big = docs / "h-oneline.txt"
    big.write_bytes(b"word " * 1_000_000)  # 5 MB, no newline
    unknown = tmp_path / "notes.xyz"
    unknown.write_text("some text in an unknown format")

    with Index(tmp_path / "idx", embedder=embedder) as idx:
        report = idx.add([docs, unknown, tmp_path / "missing-folder"])
        failed = dict(report.failed)
        assert failed[str(docs / "c-truncated.pdf")].startswith("corrupt or truncated PDF")
        assert failed[str(docs / "d-binary.txt")] == "binary content, not text"
        assert failed[str(docs / "e-empty.md")] == "empty file (no text)"
        assert failed[str(docs / "f-blank.txt")] == "empty file (no text)"
        assert failed[str(big)] == ("a single line of 5.0 MB: looks like data or minified "
                                    "text, not prose")
        assert failed[str(unknown)] == "unsupported file type '.xyz'"
        assert failed[str(tmp_path / "missing-folder")] == "no such file or folder"
        assert len(failed) == 7
        assert report.added == 3  # the two good files and the Latin-1 one
        assert report.warnings == [f"{latin}: not valid UTF-8, decoded as cp1252"]
        sources = {d.path for d in documents(idx)}
        assert sources == {str(good), str(docs / "b-good.pdf"), str(latin)}
        hit = idx.search("crème brûlée", k=1).hits[0]
        assert hit.source == str(latin) and "brûlée" in hit.text
        assert_consistent(idx)


def test_line_limit_is_explicit_and_prose_with_long_lines_passes(tmp_path: Path,
                                                                 embedder) -> None:
    assert MAX_LINE_CHARS == 1_000_000
    p = tmp_path / "long-but-ok.md"
    p.write_text("# Title\n\n" + "A sentence that goes on. " * 2000 + "\n")  # 50 kB line
    with Index(tmp_path / "idx", embedder=embedder) as idx:
        report = idx.add([p])
    assert report.failed == [] and report.added == 1


class _Vanisher(IngestProgress):
    """Deletes a file the ingest has discovered but not yet read."""

    def __init__(self, victim: Path) -> None:
        self.victim = victim
        self.events: list[tuple[str, str]] = []

    def file_done(self, path: str, status: str, chunks: int = 0) -> None:
        self.events.append((path, status))
        if len(self.events) == 1:
            self.victim.unlink()


def test_file_vanishing_mid_ingest(tmp_path: Path, embedder) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in [("a.txt", "Alpha file about kites."), ("b.txt", "Bravo file about tea."),
                       ("c.txt", "Charlie file about maps.")]:
        (docs / name).write_text(text)
    progress = _Vanisher(docs / "b.txt")
    with Index(tmp_path / "idx", embedder=embedder) as idx:
        report = idx.add([docs], progress=progress)
        assert report.failed == [(str(docs / "b.txt"), "file vanished before it could be read")]
        assert progress.events == [(str(docs / "a.txt"), "added"),
                                   (str(docs / "b.txt"), "failed"),
                                   (str(docs / "c.txt"), "added")]
        assert {d.path for d in documents(idx)} == {str(docs / "a.txt"),
                                                             str(docs / "c.txt")}
        assert_consistent(idx)
