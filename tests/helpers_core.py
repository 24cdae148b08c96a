"""Builders for tiny real fixture files (PDF, docx, corpora) shared by the core tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ragline.index import Index
from ragline.store.base import ChunkRecord, DocumentRecord
from ragline.types import Hit


def make_pdf(pages: list[list[str]]) -> bytes:
    """A real, minimal PDF with one Helvetica text line per string, one list per page."""
    n = len(pages)
    font_id = 3 + 2 * n
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(n))
    objs: list[bytes] = [b"<< /Type /Catalog /Pages 2 0 R >>",
                         f"<< /Type /Pages /Kids [{kids}] /Count {n} >>".encode()]
    for i, lines in enumerate(pages):
        objs.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << "
            f"/F1 {font_id} 0 R >> >> /Contents {4 + 2 * i} 0 R >>".encode()
        )
        ops = ["BT", "/F1 11 Tf", "14 TL", "72 720 Td"]
        for line in lines:
            esc = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            ops.append(f"({esc}) Tj T*")
        ops.append("ET")
        stream = "\n".join(ops).encode("latin-1")
        objs.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    objs.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica "
                b"/Encoding /WinAnsiEncoding >>")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objs, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1,
                                                                               xref)
    return bytes(out)


def make_docx(path: Path) -> None:
    """A Word file with Title/Heading styles, body paragraphs and a table."""
    import docx

    d = docx.Document()
    d.add_heading("Garden Handbook", level=0)
    d.add_heading("Soil", level=1)
    d.add_paragraph("Loam holds water and air in a good balance for roots.")
    d.add_heading("Compost", level=2)
    d.add_paragraph("A compost heap needs greens, browns, air and a little water.")
    d.add_heading("Pests", level=1)
    d.add_paragraph("Slugs eat lettuce at night after rain.")
    table = d.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text = "tomato"
    table.rows[0].cells[1].text = "full sun"
    d.save(str(path))


TOPICS = ["apples", "rivers", "copper", "violins", "glaciers", "owls", "bread", "comets",
          "tides", "cedars"]


def write_corpus(folder: Path, n: int, sentences: int = 6) -> list[Path]:
    """n small distinct text files, names sorted in creation order."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        body = " ".join(
            f"Note {i} sentence {j} says that {topic} number {i * 31 + j} behave in their "
            f"own particular way in chapter {j}." for j in range(sentences)
        )
        path = folder / f"doc{i:03d}.txt"
        path.write_text(f"{body}\n\nA closing remark {i} about {topic}.\n")
        paths.append(path)
    return paths


def assert_consistent(idx: Index) -> None:
    """Catalog, vectors and BM25 postings hold exactly the same chunks."""
    with idx.store.read() as reader:
        assert reader.verify() == []


def chunk_rows(idx: Index) -> dict[str, list[str]]:
    """source -> chunk_ids in ordinal order."""
    out: dict[str, list[str]] = {}
    with idx.store.read() as reader:
        for doc in reader.documents():
            for c in reader.document_chunks(doc.id):
                out.setdefault(c.source, []).append(c.chunk_id)
    return out


def vector_ids_of(idx: Index, source: str) -> np.ndarray:
    with idx.store.read() as reader:
        rows = reader.chunks(reader.chunk_ids().tolist()).values()
        return np.array(sorted(c.id for c in rows if c.source == source), dtype=np.int64)


def vectors_of(idx: Index, ids: np.ndarray) -> np.ndarray:
    with idx.store.read() as reader:
        return reader.vectors(ids.tolist())


def document(idx: Index, path: str) -> DocumentRecord | None:
    with idx.store.read() as reader:
        return reader.document(path)


def all_ids(idx: Index) -> np.ndarray:
    with idx.store.read() as reader:
        return reader.chunk_ids()


def documents(idx: Index) -> list[DocumentRecord]:
    with idx.store.read() as reader:
        return reader.documents()


def chunks_of(idx: Index, source: str) -> list[ChunkRecord]:
    """The chunks whose source is `source` (a file, or `file#id` of a corpus), in order."""
    with idx.store.read() as reader:
        rows = reader.chunks(reader.chunk_ids().tolist()).values()
        return sorted((c for c in rows if c.source == source), key=lambda c: c.ordinal)


def counts(idx: Index) -> tuple[int, int]:
    with idx.store.read() as reader:
        return reader.counts()


def make_hits(texts: list[str]) -> list[Hit]:
    """Search hits over plain passages, ranked in the given order, for citation tests."""
    return [Hit(rank=i + 1, score=0.5, chunk_id=f"c{i + 1}", source=f"doc{i + 1}.md",
                page=None, heading=None, text=t) for i, t in enumerate(texts)]
