"""Builders for tiny real fixture files (PDF, docx, corpora) shared by the core tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ragline.index import Index
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
    """Catalog and vector store hold exactly the same ids."""
    cat = idx.catalog.all_chunk_ids()
    vec = sorted(int(i) for i in idx.vectors.ids())
    assert cat == vec, f"catalog {len(cat)} ids vs faiss {len(vec)} ids"


def chunk_rows(idx: Index) -> dict[str, list[str]]:
    """source -> chunk_ids in ordinal order."""
    out: dict[str, list[str]] = {}
    for source, cid in idx.catalog.conn.execute(
        "SELECT source, chunk_id FROM chunks ORDER BY source, ordinal"
    ):
        out.setdefault(source, []).append(cid)
    return out


def vector_ids_of(idx: Index, source: str) -> np.ndarray:
    rows = idx.catalog.conn.execute("SELECT id FROM chunks WHERE source = ?", (source,))
    return np.array([r[0] for r in rows], dtype=np.int64)


def make_hits(texts: list[str]) -> list[Hit]:
    """Search hits over plain passages, ranked in the given order, for citation tests."""
    return [Hit(rank=i + 1, score=0.5, chunk_id=f"c{i + 1}", source=f"doc{i + 1}.md",
                page=None, heading=None, text=t) for i, t in enumerate(texts)]
