"""Metadata through the whole ingest, and filters applied inside the search (every mode)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers_core import assert_consistent, make_pdf

from ragline import Index
from ragline.store.filters import FilterError

MODES = ("dense", "lexical", "hybrid")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("meta-corpus")
    (root / "contract.md").write_text(
        "---\ntitle: Supply contract\nteam: legal\nyear: 2023\ndraft: true\n---\n"
        "# Terms\n\nThe supplier delivers granite blocks within thirty days of the order.\n")
    (root / "policy.md").write_text(
        "---\nteam: hr\nyear: 2019\n---\n# Leave\n\nStaff accrue two days of leave a month.\n")
    (root / "atlas.pdf").write_bytes(make_pdf([["Basalt columns form as lava cools."],
                                               ["Granite cools slowly deep underground."]]))
    with (root / "records.jsonl").open("w") as fh:
        for i in range(300):  # 1% of them (n < 3) is what the narrow filter keeps
            rec = {"_id": f"r{i}", "title": f"Record {i}",
                   "text": f"Granite quarry report {i}: blocks of stone cut and shipped.",
                   "metadata": {"n": i, "region": "north" if i % 2 else "south"}}
            fh.write(json.dumps(rec) + "\n")
    return root


@pytest.fixture(scope="module")
def index(corpus: Path, tmp_path_factory: pytest.TempPathFactory, embedder) -> Index:
    idx = Index(tmp_path_factory.mktemp("meta-idx"), embedder=embedder)
    report = idx.add([corpus], meta={"project": "apollo", "reviewed": False})
    assert report.added == 4 and not report.failed, report.failed
    yield idx
    idx.close()


def test_every_chunk_carries_builtin_file_and_user_fields(index: Index, corpus: Path) -> None:
    contract = index.search("granite blocks delivered", k=5, where='team == "legal"').hits
    assert contract and all(h.source == str(corpus / "contract.md") for h in contract)
    meta = contract[0].metadata
    assert meta["type"] == "md" and meta["title"] == "Supply contract"
    assert meta["team"] == "legal" and meta["year"] == 2023 and meta["draft"] is True
    assert meta["project"] == "apollo" and meta["reviewed"] is False
    assert meta["size"] == (corpus / "contract.md").stat().st_size
    assert meta["modified"].endswith("Z") and meta["modified"][:4].isdigit()
    pdf = index.search("basalt lava", k=1, where='type == "pdf"').hits[0]
    assert pdf.metadata["pages"] == 2 and pdf.page == 1
    record = index.search("quarry report 7", k=1, where="n == 7").hits[0]
    assert record.source.endswith("#r7") and record.metadata["region"] == "north"
    fields = index.status()["fields"]
    assert fields["year"] == "number" and fields["draft"] == "boolean"
    assert fields["team"] == "string" and fields["n"] == "number"
    assert_consistent(index)


@pytest.mark.parametrize("mode", MODES)
def test_a_filter_keeping_one_percent_still_fills_k(index: Index, mode: str) -> None:
    # the query matches the pdf and the contract best; the filter keeps 3 of ~304 chunks
    hits = index.search("granite cools slowly underground", k=3, mode=mode,
                        where="n < 3").hits
    assert sorted(h.source.rsplit("#", 1)[1] for h in hits) == ["r0", "r1", "r2"]
    wide = index.search("granite", k=10, mode=mode,
                        where={"field": "meta.region", "operator": "==", "value": "south"})
    assert len(wide.hits) == 10
    assert all(h.metadata["region"] == "south" for h in wide.hits)


@pytest.mark.parametrize("where, want", [
    ('type == "md" and year >= 2020', {"contract.md"}),
    ('type in ["md", "pdf"] and not (team == "legal")', {"policy.md", "atlas.pdf"}),
    ({"team": ["hr", "legal"]}, {"contract.md", "policy.md"}),
    ('draft == true or year < 2020', {"contract.md", "policy.md"}),
])
def test_filters_select_documents(index: Index, where: object, want: set[str]) -> None:
    for mode in MODES:
        hits = index.search("granite leave lava", k=20, mode=mode, where=where).hits
        assert {Path(h.source.split("#")[0]).name for h in hits} == want, mode


def test_bad_filters_say_what_is_wrong(index: Index) -> None:
    with pytest.raises(FilterError, match="unknown field 'teem'.*known fields: .*team"):
        index.search("granite", where='teem == "legal"')
    with pytest.raises(FilterError, match="after .>. at position 7"):
        index.search("granite", where="year >")
    with pytest.raises(FilterError, match="year.*number"):
        index.search("granite", where='year == "2023"')


def test_a_field_of_another_type_fails_that_file_only(tmp_path: Path, embedder) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("---\nyear: 2021\n---\nHoneybees dance to share directions.\n")
    with Index(tmp_path / "idx", embedder=embedder) as idx:
        assert idx.add([docs]).added == 1
        (docs / "b.md").write_text("---\nyear: last year\n---\nMoths fly towards lamps.\n")
        (docs / "c.md").write_text("Owls hunt at night.\n")
        report = idx.add([docs])
        assert report.added == 1
        assert [p for p, _ in report.failed] == [str(docs / "b.md")]
        reason = report.failed[0][1]
        assert "'year'" in reason and "number" in reason and "'last year'" in reason
        assert {Path(h.source).name for h in idx.search("owls moths bees", k=5).hits} == {
            "a.md", "c.md"}
        assert_consistent(idx)


def test_new_meta_values_reingest_without_embedding(tmp_path: Path, embedder) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("x.txt", "y.txt"):
        (docs / name).write_text(f"Notes in {name} about tides and the moon.\n")
    with Index(tmp_path / "idx", embedder=embedder) as idx:
        idx.add([docs], meta={"team": "a"})
        assert idx.add([docs], meta={"team": "a"}).unchanged == 2
        report = idx.add([docs], meta={"team": "b"})
        assert report.updated == 2 and report.chunks_embedded == 0 and report.chunks_reused == 2
        assert len(idx.search("tides", k=5, where='team == "b"').hits) == 2
        assert idx.search("tides", k=5, where='team == "a"').hits == []
