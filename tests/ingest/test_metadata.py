"""Document metadata: typed values, `--meta` parsing, file fields, built-ins and their merge."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest
from helpers_core import make_pdf

from ragline.errors import LoadError, RaglineError
from ragline.ingest.loaders import load
from ragline.ingest.metadata import (
    BUILTIN_FIELDS,
    BUILTIN_TYPES,
    MetadataError,
    builtin_meta,
    clean_user_meta,
    document_meta,
    parse_assignments,
    parse_value,
)
from ragline.store.base import value_type
from ragline.types import Block, Document

# --- values and --meta -----------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("2024", 2024), ("-3", -3), ("2.5", 2.5), ("1e3", 1000.0), ("true", True),
    ("false", False), ('"2024"', "2024"), ('"a b"', "a b"), ("null", "null"),
    ("[1, 2]", "[1, 2]"), ('{"a": 1}', '{"a": 1}'), ("hello world", "hello world"),
    ("", ""), ("007", "007"), ("True", "True"), ("NaN", "NaN"), ("Infinity", "Infinity"),
])
def test_parse_value_types_like_a_json_scalar(text: str, expected: object) -> None:
    got = parse_value(text)
    assert got == expected
    assert type(got) is type(expected)  # 1 == True == 1.0 in Python, so check the type too


def test_value_type_checks_bool_before_int() -> None:
    assert value_type(True) == "boolean"
    assert value_type(0) == "number"
    assert value_type(2.5) == "number"
    assert value_type("x") == "string"
    with pytest.raises(RaglineError, match="strings, numbers or booleans"):
        value_type([1])  # type: ignore[arg-type]


def test_builtin_names_and_types_agree() -> None:
    assert set(BUILTIN_TYPES) == set(BUILTIN_FIELDS)
    assert BUILTIN_TYPES["size"] == "number" and BUILTIN_TYPES["modified"] == "string"


def test_parse_assignments_typed_values_and_last_wins() -> None:
    got = parse_assignments(["year=2024", "team=search", "draft=false", "code=\"42\"",
                             "expr=a=b", "empty=", "team=ranking"])
    assert got == {"year": 2024, "team": "ranking", "draft": False, "code": "42",
                   "expr": "a=b", "empty": ""}
    assert type(got["year"]) is int and type(got["draft"]) is bool
    assert parse_assignments([]) == {}


@pytest.mark.parametrize(("item", "words"), [
    ("year2024", ["'year2024'", "key=value"]),
    ("2year=1", ["'2year=1'", "bad field name '2year'"]),
    ("my-team=x", ["'my-team=x'", "bad field name 'my-team'"]),
    ("=x", ["'=x'", "bad field name ''"]),
    ("title=Mine", ["'title=Mine'", "'title' is a built-in field"]),
    ("source=elsewhere", ["'source=elsewhere'", "'source' is a built-in field"]),
])
def test_parse_assignments_errors_name_the_item(item: str, words: list[str]) -> None:
    with pytest.raises(MetadataError) as err:
        parse_assignments(["ok=1", item])
    assert isinstance(err.value, RaglineError)
    for w in words:
        assert w in str(err.value)


# --- metadata found in files -------------------------------------------------------------


def test_clean_user_meta_keeps_scalars_and_warns_about_the_rest() -> None:
    raw = {
        "team": "search", "year": 2024, "score": 0.5, "draft": True,
        "date": dt.date(2024, 5, 1), "at": dt.datetime(2024, 5, 1, 12, 30, 0),
        "gone": None, "tags": ["a", "b"], "owner": {"name": "x"}, "bad-name": 1,
        "type": "memo", "pages": 3, "nan": float("nan"), "blob": b"x", 7: "seven",
    }
    clean, warnings = clean_user_meta(raw, "notes.jsonl:3")
    assert clean == {"team": "search", "year": 2024, "score": 0.5, "draft": True,
                     "date": "2024-05-01", "at": "2024-05-01T12:30:00"}
    dropped = ["tags", "owner", "bad-name", "type", "pages", "nan", "blob", "7"]
    assert len(warnings) == len(dropped)
    for name, warning in zip(dropped, warnings, strict=True):
        assert warning.startswith("notes.jsonl:3: ")
        assert repr(name) in warning or f" {name} " in warning
    assert "built-in" in warnings[3] and "built-in" in warnings[4]
    assert "list" in warnings[0] and "mapping" in warnings[1]


def test_clean_user_meta_empty() -> None:
    assert clean_user_meta({}, "x") == ({}, [])


# --- built-ins and the merge ---------------------------------------------------------------


@pytest.mark.parametrize(("name", "kind"), [
    ("a.pdf", "pdf"), ("a.md", "md"), ("a.MARKDOWN", "md"), ("a.txt", "txt"),
    ("a.html", "html"), ("a.HTM", "html"), ("a.docx", "docx"), ("a.jsonl", "jsonl"),
    ("a.RST", "rst"), ("a.text", "text"),
])
def test_builtin_meta_type_from_suffix(name: str, kind: str) -> None:
    doc = Document(name, [Block("x")])
    assert builtin_meta(Path(name), doc, 1, 0.0)["type"] == kind


def test_builtin_meta_fields() -> None:
    mtime = dt.datetime(2024, 5, 1, 12, 0, 0, tzinfo=dt.timezone.utc).timestamp() + 0.75
    doc = Document("docs/r.pdf", [Block("x")], title="Report", pages=4)
    assert builtin_meta(Path("docs/r.pdf"), doc, 2048, mtime) == {
        "source": "docs/r.pdf", "type": "pdf", "title": "Report", "size": 2048,
        "modified": "2024-05-01T12:00:00Z", "pages": 4}
    bare = builtin_meta(Path("n.txt"), Document("n.txt", [Block("x")]), 5, 0.0)
    assert bare == {"source": "n.txt", "type": "txt", "size": 5,
                    "modified": "1970-01-01T00:00:00Z"}
    for key, value in builtin_meta(Path("docs/r.pdf"), doc, 2048, mtime).items():
        assert value_type(value) == BUILTIN_TYPES[key]


def test_builtin_meta_of_a_real_file(tmp_path: Path) -> None:
    p = tmp_path / "guide.md"
    p.write_text("# Guide\n\nBody text.\n")
    os.utime(p, (1714564800, 1714564800))  # 2024-05-01T12:00:00Z
    [doc] = load(p)
    st = p.stat()
    meta = builtin_meta(p, doc, st.st_size, st.st_mtime)
    assert meta == {"source": str(p), "type": "md", "title": "Guide",
                    "size": len(b"# Guide\n\nBody text.\n"),
                    "modified": "2024-05-01T12:00:00Z"}


def test_document_meta_precedence() -> None:
    builtin = {"source": "a.md", "type": "md", "size": 10, "modified": "2024-05-01T12:00:00Z"}
    from_file = {"team": "search", "year": 2023, "status": "draft", "title": "sneaky"}
    from_cli = {"year": 2024, "owner": "kim", "type": "pdf", "source": "b.md"}
    merged = document_meta(builtin, from_file, from_cli)
    assert merged == {"source": "a.md", "type": "md", "size": 10,
                      "modified": "2024-05-01T12:00:00Z", "team": "search", "year": 2024,
                      "status": "draft", "owner": "kim"}
    assert "title" not in merged  # a built-in name in a user dict never stands in for it
    assert list(merged)[:4] == ["source", "type", "size", "modified"]
    assert document_meta(builtin, {}, {}) == builtin


# --- through the real loaders -----------------------------------------------------------


def test_markdown_front_matter(tmp_path: Path) -> None:
    p = tmp_path / "memo.md"
    p.write_text(
        "---\ntitle: Quarterly Memo\nteam: search\nyear: 2024\ndraft: false\n"
        "date: 2024-05-01\ntags: [a, b]\ntype: memo\n---\n# Heading One\n\nBody text here.\n"
    )
    [doc] = load(p)
    assert doc.title == "Quarterly Memo"  # front matter beats the first heading
    assert doc.meta == {"team": "search", "year": 2024, "draft": False, "date": "2024-05-01"}
    assert "team" not in doc.text and "---" not in doc.text
    assert [b.text for b in doc.blocks] == ["Body text here."]
    assert doc.blocks[0].heading == "Heading One"
    assert len(doc.warnings) == 2
    assert all(w.startswith(f"{p}: ") for w in doc.warnings)
    assert "'tags'" in doc.warnings[0] and "'type'" in doc.warnings[1]
    assert not any("title" in w for w in doc.warnings)


def test_markdown_front_matter_dots_close_and_crlf(tmp_path: Path) -> None:
    p = tmp_path / "dots.md"
    p.write_bytes(b"---\r\nowner: kim\r\n...\r\nJust a paragraph.\r\n")
    [doc] = load(p)
    assert doc.meta == {"owner": "kim"}
    assert doc.text == "Just a paragraph."
    assert doc.title is None and doc.warnings == []


def test_markdown_invalid_front_matter_is_a_warning(tmp_path: Path) -> None:
    p = tmp_path / "bad.md"
    p.write_text("---\nteam: [unclosed\n---\n# Title\n\nKept body.\n")
    [doc] = load(p)
    assert doc.meta == {}
    assert doc.text == "Kept body." and doc.title == "Title"
    assert len(doc.warnings) == 1 and str(p) in doc.warnings[0]
    assert "YAML" in doc.warnings[0]


def test_markdown_front_matter_not_a_mapping(tmp_path: Path) -> None:
    p = tmp_path / "list.md"
    p.write_text("---\n- a\n- b\n---\nKept body.\n")
    [doc] = load(p)
    assert doc.meta == {} and doc.text == "Kept body."
    assert len(doc.warnings) == 1 and str(p) in doc.warnings[0]
    assert "mapping" in doc.warnings[0]


def test_markdown_without_front_matter_unchanged(tmp_path: Path) -> None:
    p = tmp_path / "plain.md"
    p.write_text("# Plain\n\nText.\n\n---\n\nAfter the rule.\n")
    [doc] = load(p)
    assert doc.meta == {} and doc.warnings == [] and doc.pages is None
    assert doc.title == "Plain"
    assert [b.text for b in doc.blocks] == ["Text.", "---", "After the rule."]
    q = tmp_path / "rule.md"  # a leading rule that is never closed is not front matter
    q.write_text("---\n\nOnly text.\n")
    [doc] = load(q)
    assert [b.text for b in doc.blocks] == ["---", "Only text."] and doc.meta == {}


def test_jsonl_metadata(tmp_path: Path) -> None:
    p = tmp_path / "corpus.jsonl"
    rows = [
        {"_id": "a", "text": "Alpha text.", "metadata": {"lang": "en", "year": 2020,
                                                         "tags": ["x"], "source": "web"}},
        {"_id": "b", "text": "Beta text."},
        {"_id": "c", "text": "Gamma text.", "metadata": None},
    ]
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    a, b, c = load(p)
    assert a.meta == {"lang": "en", "year": 2020}
    assert len(a.warnings) == 2
    assert all(w.startswith(f"{p}:1: ") for w in a.warnings)
    assert "'tags'" in a.warnings[0] and "'source'" in a.warnings[1]
    assert b.meta == {} and b.warnings == []
    assert c.meta == {} and c.warnings == []


@pytest.mark.parametrize("bad", ['"en"', "[1, 2]", "3"])
def test_jsonl_metadata_not_an_object(tmp_path: Path, bad: str) -> None:
    p = tmp_path / "bad.jsonl"
    p.write_text('{"_id": "a", "text": "ok"}\n' f'{{"_id": "b", "text": "t", "metadata": {bad}}}\n')
    with pytest.raises(LoadError) as err:
        load(p)
    assert "line 2" in str(err.value) and "metadata" in str(err.value)
    assert str(p) in str(err.value)


def test_pdf_pages(tmp_path: Path) -> None:
    p = tmp_path / "three.pdf"
    p.write_bytes(make_pdf([["Page one text."], ["Page two text."], ["Page three text."]]))
    [doc] = load(p)
    assert doc.pages == 3
    assert doc.meta == {}
    meta = builtin_meta(p, doc, p.stat().st_size, p.stat().st_mtime)
    assert meta["pages"] == 3 and meta["type"] == "pdf"
    assert meta["size"] == len(p.read_bytes())
