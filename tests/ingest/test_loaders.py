"""Each loader on a tiny real file the test writes: text, blocks, headings, pages, sources."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers_core import make_docx, make_pdf

from ragline.errors import LoadError
from ragline.ingest.loaders import load


def test_txt_paragraphs_and_crlf(tmp_path: Path) -> None:
    p = tmp_path / "note.txt"
    p.write_bytes(b"First paragraph line one.\r\nLine two.\r\n\r\nSecond paragraph.\r\n")
    [doc] = load(p)
    assert doc.source == str(p)
    assert [b.text for b in doc.blocks] == ["First paragraph line one.\nLine two.",
                                            "Second paragraph."]
    assert doc.warnings == []


def test_txt_utf8_bom_and_non_latin(tmp_path: Path) -> None:
    p = tmp_path / "bom.txt"
    p.write_bytes("Наука и жизнь. नमस्ते दुनिया.".encode("utf-8-sig"))
    [doc] = load(p)
    assert doc.text == "Наука и жизнь. नमस्ते दुनिया."
    assert doc.warnings == []


def test_markdown_heading_path_and_code_fence(tmp_path: Path) -> None:
    p = tmp_path / "guide.md"
    p.write_text(
        "# Guide\n\nIntro text.\n\n## Install\n\nRun the installer.\n\n"
        "```bash\n# not a heading\npip install thing\n```\n\n### Linux\n\nUse apt.\n\n"
        "## Usage\n\nCall it.\n"
    )
    [doc] = load(p)
    assert doc.title == "Guide"
    by_text = {b.text: b.heading for b in doc.blocks}
    assert by_text["Intro text."] == "Guide"
    assert by_text["Run the installer."] == "Guide > Install"
    assert by_text["Use apt."] == "Guide > Install > Linux"
    assert by_text["Call it."] == "Guide > Usage"  # a sibling pops the deeper level
    fence = next(t for t in by_text if t.startswith("```"))
    assert "# not a heading" in fence and by_text[fence] == "Guide > Install"


def test_html_main_text_without_furniture(tmp_path: Path) -> None:
    p = tmp_path / "page.html"
    p.write_text(
        "<html><head><title>Bees page</title><style>p{color:red}</style></head><body>"
        "<nav><a href='/'>Home</a> <a href='/x'>MENUITEM</a></nav>"
        "<header>SITEBANNER</header>"
        "<script>var tracking = 'SCRIPTTEXT';</script>"
        "<main><h1>Honeybees</h1><p>Bees make <b>honey</b> from nectar.</p>"
        "<h2>Dance</h2><p>The waggle dance shows where flowers are.</p>"
        "<ul><li>Queen</li><li>Workers</li></ul></main>"
        "<div class='sidebar'>SIDEBARTEXT</div>"
        "<footer>COPYRIGHT FOOTER</footer></body></html>"
    )
    [doc] = load(p)
    text = doc.text
    assert "Bees make honey from nectar." in text
    assert "The waggle dance shows where flowers are." in text
    for junk in ("MENUITEM", "SITEBANNER", "SCRIPTTEXT", "SIDEBARTEXT", "COPYRIGHT", "color:red"):
        assert junk not in text
    headings = {b.text: b.heading for b in doc.blocks}
    assert headings["Bees make honey from nectar."] == "Honeybees"
    assert headings["The waggle dance shows where flowers are."] == "Honeybees > Dance"
    assert doc.title == "Bees page"


def test_pdf_keeps_page_numbers(tmp_path: Path) -> None:
    p = tmp_path / "two.pdf"
    p.write_bytes(make_pdf([["Apples grow on trees in the orchard."],
                            ["The sea is wide and deep."],
                            ["Copper conducts electricity well."]]))
    [doc] = load(p)
    pages = {b.page for b in doc.blocks}
    assert pages == {1, 2, 3}
    by_page = {b.page: b.text for b in doc.blocks}
    assert "Apples grow on trees" in by_page[1]
    assert "sea is wide" in by_page[2]
    assert "Copper conducts" in by_page[3]


def test_docx_heading_styles(tmp_path: Path) -> None:
    p = tmp_path / "garden.docx"
    make_docx(p)
    [doc] = load(p)
    assert doc.title == "Garden Handbook"
    by_text = {b.text: b.heading for b in doc.blocks}
    assert by_text["Loam holds water and air in a good balance for roots."] == \
        "Garden Handbook > Soil"
    assert by_text["A compost heap needs greens, browns, air and a little water."] == \
        "Garden Handbook > Soil > Compost"
    assert by_text["Slugs eat lettuce at night after rain."] == "Garden Handbook > Pests"
    assert "tomato | full sun" in by_text


def test_beir_jsonl_one_document_per_line(tmp_path: Path) -> None:
    p = tmp_path / "corpus.jsonl"
    rows = [{"_id": "d1", "title": "Aspirin", "text": "Aspirin thins the blood."},
            {"_id": "d2", "title": "", "text": "Zinc helps wounds heal."},
            {"_id": "d3", "title": "Only a title", "text": ""}]
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    docs = load(p)
    assert [d.source for d in docs] == [f"{p}#d1", f"{p}#d2", f"{p}#d3"]
    assert docs[0].title == "Aspirin" and docs[0].text == "Aspirin thins the blood."
    assert docs[1].title is None
    assert docs[2].text == "Only a title"


def test_jsonl_errors_name_the_line(tmp_path: Path) -> None:
    p = tmp_path / "bad.jsonl"
    p.write_text('{"_id": "a", "text": "fine"}\n{not json\n')
    with pytest.raises(LoadError, match=r"line 2: invalid JSON"):
        load(p)
    p.write_text('{"_id": "a", "text": "x"}\n{"_id": "a", "text": "y"}\n')
    with pytest.raises(LoadError, match="duplicate _id 'a'"):
        load(p)


def test_unknown_extension(tmp_path: Path) -> None:
    p = tmp_path / "data.xyz"
    p.write_text("hello")
    with pytest.raises(LoadError) as e:
        load(p)
    assert e.value.path == str(p) and "unsupported file type '.xyz'" in e.value.reason


def test_utf16_with_bom(tmp_path: Path) -> None:
    p = tmp_path / "windows.txt"
    p.write_bytes("Notes from Notepad: café.\r\n".encode("utf-16"))
    [doc] = load(p)
    assert doc.text == "Notes from Notepad: café."


@pytest.mark.parametrize("name, data, reason", [
    ("fake.docx", b"PK\x03\x04 not really a zip", "corrupt .docx"),
    ("fake.pdf", b"hello, I am text", "not a PDF (no %PDF header)"),
    ("zero.pdf", b"", "empty file (no text)"),
    ("nulls.md", b"# T\n\x00\x00\x00", "binary content, not text"),
])
def test_corrupt_files_name_the_reason(tmp_path: Path, name: str, data: bytes,
                                       reason: str) -> None:
    p = tmp_path / name
    p.write_bytes(data)
    with pytest.raises(LoadError) as e:
        load(p)
    assert e.value.path == str(p) and e.value.reason.startswith(reason)
    assert str(e.value).startswith(f"{p}: ")
