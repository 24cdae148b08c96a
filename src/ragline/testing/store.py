"""The store conformance suite: every backend inherits `StoreConformance` and passes it as is.

Haystack's model (haystack/testing/document_store.py): the suite lives in the package, and a
backend's test module subclasses it, providing one fixture, `open_store`, a callable that opens
the backend's store at one fixed location (calling it again reopens the same data). Nothing here
knows how a backend stores anything: only the `IndexStore` protocol is used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace

import numpy as np
import pytest

from ragline.errors import IndexMismatchError
from ragline.store.base import (
    ChunkRecord,
    DocumentRecord,
    IndexStore,
    MetadataTypeError,
    StoreReader,
    StoreWriter,
)
from ragline.store.filters import FilterError, matches, parse_filter
from ragline.store.lexical import Analyzer, Bm25Settings, idf, lexical_text

DIM = 16
TEAMS = ("legal", "hr", "eng", "ops")
WORDS = ("river", "copper", "violin", "glacier", "owl", "bread", "comet", "tide", "cedar",
         "lantern", "marble", "falcon", "harbor", "meadow", "quartz", "saddle")
INFO = {"model": "conformance-model", "dim": DIM, "pooling": "mean", "chunk_tokens": 64,
        "overlap": 8}
OpenStore = Callable[[], IndexStore]


def unit(n: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def doc_meta(i: int) -> dict[str, str | int | float | bool]:
    """Document i's fields: team cycles over 4, year over 10, draft every 3rd, one rare tag."""
    meta: dict[str, str | int | float | bool] = {
        "source": f"doc{i:03d}.md", "team": TEAMS[i % 4], "year": 2015 + i % 10,
        "draft": i % 3 == 0, "score": i / 4}
    if i == 7:
        meta["rare"] = "yes"
    return meta


def make_chunks(i: int, n: int = 4, tag: str = "") -> list[ChunkRecord]:
    """n chunks of document i; each text is unique and says which document and chunk it is."""
    out = []
    for j in range(n):
        words = " ".join(WORDS[(i * 3 + j * 5 + t) % len(WORDS)] for t in range(6))
        text = f"{words} document{i} part{j} {tag}".strip()
        out.append(ChunkRecord(chunk_id=f"c{i}-{j}{tag}", source=f"doc{i:03d}.md", ordinal=j,
                               text=text, text_hash=f"h{i}-{j}{tag}", start=0, end=len(text),
                               page=j + 1 if i % 2 else None, heading=f"Part {j}",
                               title=f"Document {i}", meta=doc_meta(i)))
    return out


def write_doc(w: StoreWriter, i: int, n: int = 4, tag: str = "", seed: int | None = None
              ) -> tuple[int, list[ChunkRecord], np.ndarray]:
    meta = doc_meta(i)
    w.register_fields(meta)
    doc_id = w.put_document(DocumentRecord(f"/data/doc{i:03d}.md", f"hash{i}{tag}", 100 + i,
                                           1.7e9 + i, meta))
    chunks = make_chunks(i, n, tag)
    vecs = unit(n, seed if seed is not None else i)
    w.add_chunks(doc_id, chunks, vecs)
    return doc_id, chunks, vecs


def reference_bm25(texts: dict[int, str], query: str, settings: Bm25Settings
                   ) -> dict[int, float]:
    """BM25 (Lucene variant) computed plainly, the oracle every backend's scores must match."""
    an = Analyzer(settings.stemmer)
    terms = {i: an.terms(t) for i, t in texts.items()}
    n = len(terms)
    avg = sum(len(t) for t in terms.values()) / max(n, 1)
    out: dict[int, float] = {}
    for q in dict.fromkeys(an.terms(query)):
        df = sum(1 for t in terms.values() if q in t)
        for i, t in terms.items():
            tf = t.count(q)
            if tf:
                norm = settings.k1 * (1 - settings.b + settings.b * len(t) / avg)
                out[i] = out.get(i, 0.0) + idf(n, df) * tf / (tf + norm)
    return out


class StoreConformance:
    """Subclass with a fixture `open_store` returning a callable that opens one location."""

    @pytest.fixture
    def open_store(self) -> OpenStore:
        raise NotImplementedError("a backend's test class provides `open_store`")

    @pytest.fixture
    def store(self, open_store: OpenStore) -> Iterator[IndexStore]:
        s = open_store()
        yield s
        s.close()

    @pytest.fixture
    def filled(self, store: IndexStore) -> IndexStore:
        """40 documents x 4 chunks, committed."""
        with store.write() as w:
            w.set_info(**INFO)
            for i in range(40):
                write_doc(w, i)
            w.commit()
        return store

    @staticmethod
    def all_texts(r: StoreReader) -> dict[int, ChunkRecord]:
        return r.chunks(r.chunk_ids().tolist())

    # write, count, read back --------------------------------------------------------------
    def test_is_an_index_store(self, store: IndexStore) -> None:
        assert isinstance(store, IndexStore)
        with store.read() as r:
            assert isinstance(r, StoreReader)
            assert r.counts() == (0, 0) and r.info() == {} and r.documents() == []
            assert r.dense_search(unit(1, 0), 5)[0][0].size == 0
            assert r.lexical_search("river", 5)[0].size == 0

    def test_write_count_and_read_back(self, filled: IndexStore) -> None:
        with filled.read() as r:
            assert r.counts() == (40, 160)
            info = r.info()
            assert {k: info[k] for k in INFO} == {k: str(v) for k, v in INFO.items()}
            assert r.fields() == {"source": "string", "team": "string", "year": "number",
                                  "draft": "boolean", "score": "number", "rare": "string"}
            doc = r.document("/data/doc007.md")
            assert doc is not None and doc.hash == "hash7" and doc.meta == doc_meta(7)
            assert [d.path for d in r.documents()] == sorted(d.path for d in r.documents())
            chunks = r.document_chunks(doc.id)
            assert [c.ordinal for c in chunks] == [0, 1, 2, 3]
            assert [c.text for c in chunks] == [c.text for c in make_chunks(7)]
            assert chunks[1].page == 2 and chunks[1].heading == "Part 1"
            assert all(c.document_id == doc.id and c.meta == doc_meta(7) for c in chunks)
            ids = [c.id for c in chunks]
            assert len(set(r.chunk_ids().tolist())) == 160
            np.testing.assert_allclose(r.vectors(ids[::-1]), unit(4, 7)[::-1], atol=1e-6)
            assert set(r.chunks(ids + [10**9])) == set(ids)
            assert r.chunk_by_key("c7-2") == chunks[2] and r.chunk_by_key("nope") is None
            counts = r.chunk_counts()
            assert len(counts) == 40 and set(counts.values()) == {4}
            assert counts[doc.id] == 4
            assert r.verify() == []

    def test_replace_drops_the_old_chunks(self, filled: IndexStore) -> None:
        with filled.write() as w:
            old = w.document("/data/doc005.md")
            assert old is not None
            write_doc(w, 5, n=2, tag="v2", seed=99)
            w.commit()
        with filled.read() as r:
            assert r.counts() == (40, 158)
            doc = r.document("/data/doc005.md")
            assert doc is not None and doc.hash == "hash5v2"
            assert [c.text.endswith("v2") for c in r.document_chunks(doc.id)] == [True, True]
            ids, _ = r.lexical_search("document5 part3", 50)
            texts = r.chunks(ids.tolist())
            assert all("v2" in c.text or "document5" not in c.text for c in texts.values())
            top, _ = r.dense_search(unit(2, 99)[:1], 1)[0]
            assert r.chunks(top.tolist())[int(top[0])].text.endswith("part0 v2")

    def test_delete_removes_everywhere(self, filled: IndexStore) -> None:
        with filled.read() as r:
            doc = r.document("/data/doc011.md")
            assert doc is not None
            gone = {c.id for c in r.document_chunks(doc.id)}
        with filled.write() as w:
            w.delete_document(doc.id)
            w.commit()
        with filled.read() as r:
            assert r.counts() == (39, 156) and r.document("/data/doc011.md") is None
            assert gone.isdisjoint(r.chunk_ids().tolist())
            dense, _ = r.dense_search(unit(4, 11), 3)[0]
            lexical, _ = r.lexical_search("document11", 10)
            assert gone.isdisjoint(dense.tolist()) and lexical.size == 0
            assert r.verify() == []

    # search ---------------------------------------------------------------------------------
    def test_dense_search(self, filled: IndexStore) -> None:
        with filled.read() as r:
            runs = r.dense_search(unit(4, 9)[[2, 0]], 5)
            by_text = {c.id: c.text for c in self.all_texts(r).values()}
            for run, j in zip(runs, (2, 0), strict=True):
                ids, scores = run
                assert len(ids) == 5 and by_text[int(ids[0])].endswith(f"document9 part{j}")
                assert scores[0] == pytest.approx(1.0, abs=1e-5)
                assert (np.diff(scores) <= 1e-6).all()
            all_ids, _ = r.dense_search(unit(1, 3), 1000)[0]
            assert sorted(all_ids.tolist()) == sorted(r.chunk_ids().tolist())

    def test_lexical_search_scores_bm25(self, filled: IndexStore) -> None:
        settings = Bm25Settings()
        with filled.read() as r:
            texts = {cid: lexical_text(c.title, c.heading, c.text, settings.title_weight)
                     for cid, c in self.all_texts(r).items()}
            for query in ("river copper", "document12 part2", "falcon falcon meadow saddle",
                          "the of and"):
                ids, scores = r.lexical_search(query, 10)
                want = reference_bm25(texts, query, settings)
                best = sorted(want.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
                assert len(ids) == len(best)
                assert np.allclose(scores, [s for _, s in best], rtol=1e-4)
                assert all(want[int(i)] == pytest.approx(float(s), rel=1e-4)
                           for i, s in zip(ids, scores, strict=True))
                assert (np.diff(scores) <= 1e-6).all()

    @pytest.mark.parametrize("where", [
        'rare == "yes"',                                    # 1 document of 40
        'team == "legal" and year >= 2020',
        {"operator": "OR", "conditions": [
            {"field": "meta.team", "operator": "in", "value": ["hr", "ops"]},
            {"field": "draft", "operator": "==", "value": True}]},
        'not (draft == true) and score < 3',
        'rare != "yes" and year == 2019',
    ])
    def test_filtered_search_keeps_k_inside_the_filter(self, filled: IndexStore,
                                                       where: object) -> None:
        f = parse_filter(where)  # type: ignore[arg-type]
        assert f is not None
        with filled.read() as r:
            rows = self.all_texts(r)
            keep = {cid for cid, c in rows.items() if matches(f, c.meta)}
            assert 0 < len(keep) < len(rows)
            k = 6
            for query in (unit(1, 21), unit(1, 4)):
                ids, scores = r.dense_search(query, k, f)[0]
                assert set(ids.tolist()) <= keep and len(ids) == min(k, len(keep))
                every, _ = r.dense_search(query, 1000)[0]
                assert ids.tolist() == [i for i in every.tolist() if i in keep][:k]
            ids, _ = r.lexical_search("river copper violin document7", k, f)
            lex_all, _ = r.lexical_search("river copper violin document7", 1000)
            assert set(ids.tolist()) <= keep
            assert ids.tolist() == [i for i in lex_all.tolist() if i in keep][:k]

    def test_filter_on_unknown_field_names_the_known_ones(self, filled: IndexStore) -> None:
        with filled.read() as r, pytest.raises(FilterError, match="yeer.*known fields: draft"):
            r.dense_search(unit(1, 0), 3, parse_filter("yeer > 2"))

    def test_metadata_type_change_is_refused(self, filled: IndexStore) -> None:
        with filled.write() as w:
            with pytest.raises(MetadataTypeError, match="year"):
                w.register_fields({"year": "twenty twenty"})
            with pytest.raises(MetadataTypeError, match="draft"):
                w.register_fields({"draft": 1})
            w.register_fields({"year": 2.5, "new_flag": False})
            w.commit()
        with filled.read() as r:
            assert r.fields()["new_flag"] == "boolean" and r.fields()["year"] == "number"

    # transactions ---------------------------------------------------------------------------
    def test_abort_and_leaving_without_commit_change_nothing(self, filled: IndexStore) -> None:
        with filled.write() as w:
            write_doc(w, 100)
            w.delete_document(w.document("/data/doc001.md").id)  # type: ignore[union-attr]
            assert w.vectors_for_hashes(["h100-1"])  # the writer sees its own changes
            w.abort()
            assert w.document("/data/doc100.md") is None and w.documents()
            write_doc(w, 101)  # written after the abort, then the block ends uncommitted
        with filled.read() as r:
            assert r.counts() == (40, 160)
            assert r.document("/data/doc100.md") is None and r.document("/data/doc101.md") is None
            assert r.lexical_search("document100 document101", 5)[0].size == 0
        with filled.write() as w:
            assert w.vectors_for_hashes(["h100-1", "h101-0"]) == {}
            write_doc(w, 102)
            w.commit()
        with filled.read() as r:
            assert r.counts() == (41, 164) and r.verify() == []

    def test_error_inside_the_write_block_rolls_back(self, filled: IndexStore) -> None:
        with pytest.raises(RuntimeError), filled.write() as w:
            write_doc(w, 200)
            raise RuntimeError("boom")
        with filled.read() as r:
            assert r.document("/data/doc200.md") is None and r.counts() == (40, 160)

    def test_reader_during_writer_sees_committed_state(self, filled: IndexStore) -> None:
        with filled.read() as before:
            with filled.write() as w:
                write_doc(w, 300)
                doc = w.document("/data/doc002.md")
                assert doc is not None
                w.delete_document(doc.id)
                with filled.read() as during:
                    assert during.counts() == (40, 160)
                    assert during.lexical_search("document300", 3)[0].size == 0
                    assert during.document("/data/doc002.md") is not None
                w.commit()
                with filled.read() as after:
                    assert after.counts() == (40, 160)  # one added, one deleted
                    assert after.lexical_search("document300", 3)[0].size == 3
                    assert after.document("/data/doc002.md") is None
            # a snapshot taken before the commit keeps answering from it
            assert before.counts() == (40, 160)
            assert before.document("/data/doc002.md") is not None
            assert before.lexical_search("document300", 3)[0].size == 0
            ids, _ = before.dense_search(unit(4, 2), 1)[0]
            assert before.chunks(ids.tolist())[int(ids[0])].source == "doc002.md"

    def test_vectors_reused_by_text_hash(self, filled: IndexStore) -> None:
        with filled.write() as w:
            found = w.vectors_for_hashes(["h3-1", "h3-2", "missing"])
            assert sorted(found) == ["h3-1", "h3-2"]
            np.testing.assert_allclose(found["h3-2"], unit(4, 3)[2], atol=1e-6)

    def test_reopen_keeps_everything(self, filled: IndexStore, open_store: OpenStore) -> None:
        query = unit(1, 17)
        with filled.read() as r:
            dense = r.dense_search(query, 8)[0]
            lexical = r.lexical_search("cedar lantern document17", 8)
        filled.close()
        again = open_store()
        try:
            with again.read() as r:
                assert r.counts() == (40, 160) and r.info()["model"] == INFO["model"]
                d2 = r.dense_search(query, 8)[0]
                l2 = r.lexical_search("cedar lantern document17", 8)
                assert d2[0].tolist() == dense[0].tolist()
                assert l2[0].tolist() == lexical[0].tolist()
                np.testing.assert_allclose(l2[1], lexical[1], rtol=1e-5)
            with again.write() as w:
                write_doc(w, 400)
                w.commit()
            with again.read() as r:
                assert r.counts() == (41, 164)
        finally:
            again.close()

    # bad input ------------------------------------------------------------------------------
    def test_wrong_dimension_is_refused_before_writing(self, filled: IndexStore) -> None:
        with filled.write() as w:
            with pytest.raises(IndexMismatchError, match="dimension"):
                w.set_info(**{**INFO, "dim": DIM * 2})
            with pytest.raises(IndexMismatchError, match="model"):
                w.set_info(**{**INFO, "model": "another-model"})
            doc_id = w.put_document(DocumentRecord("/data/bad.md", "x", 1, 1.0, {}))
            chunks = make_chunks(500, 2)
            with pytest.raises(ValueError, match="dimension"):
                w.add_chunks(doc_id, chunks, np.ones((2, DIM + 1), np.float32))
            bad = unit(2, 1)
            bad[1, 3] = np.nan
            with pytest.raises(ValueError, match="NaN"):
                w.add_chunks(doc_id, chunks, bad)
            with pytest.raises(ValueError):
                w.add_chunks(doc_id, chunks, unit(3, 1))  # rows and chunks disagree
            w.commit()
        with filled.read() as r:
            doc = r.document("/data/bad.md")
            assert doc is not None and r.document_chunks(doc.id) == []
            assert r.counts() == (41, 160)

    def test_ids_are_never_reused(self, filled: IndexStore) -> None:
        with filled.read() as r:
            before = set(r.chunk_ids().tolist())
        with filled.write() as w:
            w.delete_document(w.document("/data/doc039.md").id)  # type: ignore[union-attr]
            w.commit()
            _, chunks, _ = write_doc(w, 600)
            w.commit()
        with filled.read() as r:
            doc = r.document("/data/doc600.md")
            assert doc is not None
            new = {c.id for c in r.document_chunks(doc.id)}
            assert new.isdisjoint(before) and len(new) == len(chunks)


def same_meta(a: ChunkRecord, b: ChunkRecord) -> bool:
    """Chunks equal but for the ids a store gives (for copies between stores)."""
    return replace(a, id=0, document_id=0) == replace(b, id=0, document_id=0)
