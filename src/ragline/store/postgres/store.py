"""The PostgreSQL + pgvector store: the whole index in one database, the same behaviour as
the local store.

Writes: one transaction per write unit on the writer's own connection; each transaction
first takes a transaction-level advisory lock, so writers from any number of processes run
one after another (a second one waits) and each sees the state the last one committed.
Reads: a REPEATABLE READ, READ ONLY transaction per `read()`, so every call of one reader
answers from one snapshot. Dense search is exact (pgvector's `<#>` over every row) until the
index passes `hnsw_threshold` chunks; the commit that gets it there builds an HNSW index.
BM25 is scored in numpy from packed posting blocks (`lexical.py`), with the local store's
formula. A filter's kept ids are cached per commit; dense search is exact over them unless
they are many (`filtered.py`).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import psycopg
from psycopg import IsolationLevel

from ragline.errors import IndexLockedError, RaglineError
from ragline.store.base import ChunkRecord, DocumentRecord, Run, check_vectors, empty_run
from ragline.store.filters import Filter, to_sql
from ragline.store.lexical import Analyzer, Bm25Settings
from ragline.store.postgres import filtered, schema
from ragline.store.postgres.filtered import IdArray, KeptCache
from ragline.store.postgres.lexical import BAD_BLOCKS, BLOCKS, Scored, analysis_key, score_blocks
from ragline.store.postgres.writer import (
    DEFAULT_HNSW_THRESHOLD,
    HNSW_INDEX,
    PostgresWriter,
    WriteSettings,
    all_documents,
    find_document,
)

#: hnsw.ef_search: at least k, and at least this many; Milvus's ef too. bench/scale.py's
#: clustered 384-d vectors, recall@10 at ef_search 100 / 256: 0.93 / 0.98 at 20k (3.8 / 7.8 ms
#: under load), 0.86 at 1M with 100 (9.7 ms)
HNSW_EF_SEARCH = 256
_CHUNK_COLUMNS = ("id", "chunk_id", "document_id", "source", "ordinal", "text", "text_hash",
                  "page", "heading", "title", "start", "end", "meta")
_CHUNK_SELECT = ", ".join(f'c."{c}"' for c in _CHUNK_COLUMNS)


def _chunk(row: Sequence[Any]) -> ChunkRecord:
    return ChunkRecord(**dict(zip(_CHUNK_COLUMNS, row, strict=True)))


class PostgresStore:
    """An index in a PostgreSQL database (`postgresql://user:pw@host:port/db`). Thread-safe:
    readers use one connection per thread (more when reads nest), the writer its own."""

    def __init__(self, url: str, lexical: Bm25Settings | None = None,
                 hnsw_threshold: int | None = None) -> None:
        self._target = schema.parse_url(url)
        self.location = self._target.location
        self.lexical_settings = lexical or Bm25Settings()
        self.analyzer = Analyzer(self.lexical_settings.stemmer)
        given = hnsw_threshold if hnsw_threshold is not None else \
            self._target.options.get("hnsw_threshold")
        try:
            self.hnsw_threshold = int(given) if given is not None else None
        except ValueError:
            raise RaglineError(f"{self.location}: hnsw_threshold must be a whole number, "
                               f"not {given!r}") from None
        self._local = threading.local()
        self._conns: list[psycopg.Connection[Any]] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._analyzers: dict[str, Analyzer] = {}
        self.filter_cache = KeptCache()  # what filters keep, per commit
        self._release(_reader_settings(schema.create_schema(self._target)))

    def query_analyzer(self, info: dict[str, str]) -> Analyzer:
        """The analyzer the stored postings were made with: until a writer of this store
        rebuilds them for its own settings, queries must be stemmed as they were."""
        stored = info.get("lexical", "")
        if not stored or stored == analysis_key(self.lexical_settings):
            return self.analyzer
        stemmer = stored.rpartition("stemmer=")[2]
        with self._lock:
            if stemmer not in self._analyzers:
                self._analyzers[stemmer] = Analyzer(stemmer)
            return self._analyzers[stemmer]

    # connections ----------------------------------------------------------------------------
    def _idle(self) -> list[psycopg.Connection[Any]]:
        """This thread's idle reader connections (a forked child drops its parent's)."""
        if self._pid != os.getpid():
            with self._lock:  # the parent's sockets: never used (or closed) from here
                self._pid, self._conns, self._local = os.getpid(), [], threading.local()
                self.filter_cache = KeptCache()  # its lock may have been held at the fork
        idle = getattr(self._local, "idle", None)
        if idle is None:
            idle = self._local.idle = []
        return idle

    def _release(self, conn: psycopg.Connection[Any]) -> None:
        with self._lock:
            if conn not in self._conns:
                self._conns.append(conn)
        self._idle().append(conn)

    def _reader_conn(self) -> psycopg.Connection[Any]:
        idle = self._idle()
        while idle:
            conn = idle.pop()
            if not conn.closed and not conn.broken:
                break
            self._forget(conn)
        else:
            conn = _reader_settings(schema.connect(self._target))
            with self._lock:
                self._conns.append(conn)
        return conn

    def _forget(self, conn: psycopg.Connection[Any]) -> None:
        with self._lock:
            if conn in self._conns:
                self._conns.remove(conn)
        conn.close()

    def close(self) -> None:
        with self._lock:
            conns, self._conns = self._conns, []
            self._local = threading.local()
        if self._pid == os.getpid():
            for conn in conns:
                conn.close()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # reading ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def read(self) -> Iterator[PostgresReader]:
        """A snapshot of the last commit: one REPEATABLE READ, READ ONLY transaction."""
        conn = self._reader_conn()
        ok = False
        try:
            with conn.transaction():
                info = dict(conn.execute("SELECT key, value FROM ragline_meta").fetchall())
                yield PostgresReader(self, conn, info)
            ok = True
        except psycopg.OperationalError as e:
            raise schema.server_error(self._target, e) from e
        finally:
            if ok or (not conn.broken and not conn.closed):
                self._idle().append(conn)
            else:
                self._forget(conn)

    # writing ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def write(self) -> Iterator[PostgresWriter]:
        """The write unit, on its own connection; waits while another writer is in a
        transaction (it never fails for that)."""
        if getattr(self._local, "writing", False):  # it would wait for itself forever
            raise IndexLockedError(f"{self.location} is being written by this thread already")
        conn = schema.connect(self._target)
        self._local.writing = True
        try:
            yield PostgresWriter(WriteSettings(self.lexical_settings, self.analyzer,
                                               self.hnsw_threshold), conn)
        except psycopg.OperationalError as e:
            raise schema.server_error(self._target, e) from e
        finally:
            self._local.writing = False
            with contextlib.suppress(psycopg.Error):
                conn.rollback()
            conn.close()


def _reader_settings(conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    """Session settings of a reader connection, set once: snapshots, room for sorts, HNSW
    search settings, and the dumper of id arrays."""
    try:
        conn.adapters.register_dumper(IdArray, filtered.IdArrayDumper)
        conn.execute(f"SET work_mem = '64MB'; SET hnsw.ef_search = {HNSW_EF_SEARCH}; "
                     "SET hnsw.iterative_scan = relaxed_order")
        conn.commit()
        conn.isolation_level = IsolationLevel.REPEATABLE_READ
        conn.read_only = True
    except BaseException:
        conn.close()
        raise
    return conn


class PostgresReader:
    """Reads of one snapshot. Each search is one SQL statement (one round trip)."""

    def __init__(self, store: PostgresStore, conn: psycopg.Connection[Any],
                 info: dict[str, str]) -> None:
        self._store = store
        self._conn = conn
        self._info = info
        self._fields: dict[str, str] | None = None
        self._ef_search = HNSW_EF_SEARCH  # the session's; raised per transaction for big k
        self._stamp: int | None = None  # lexical_stats.stamp, read once a filter needs it

    def _rows(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        return self._conn.execute(sql, params).fetchall()  # type: ignore[arg-type]

    def info(self) -> dict[str, str]:
        return dict(self._info)

    def counts(self) -> tuple[int, int]:
        docs, chunks = self._rows("SELECT (SELECT count(*) FROM documents), "
                                  "(SELECT chunks FROM lexical_stats)")[0]
        return int(docs), int(chunks)

    def fields(self) -> dict[str, str]:
        if self._fields is None:
            self._fields = dict(self._rows("SELECT name, type FROM fields ORDER BY name"))
        return dict(self._fields)

    def document(self, path: str) -> DocumentRecord | None:
        return find_document(self._conn, path)

    def documents(self) -> list[DocumentRecord]:
        return all_documents(self._conn)

    def chunk_ids(self) -> np.ndarray:
        rows = self._rows("SELECT id FROM chunks ORDER BY id")
        return np.array([r[0] for r in rows], dtype=np.int64)

    def chunks(self, ids: Sequence[int]) -> dict[int, ChunkRecord]:
        rows = self._rows(f"SELECT {_CHUNK_SELECT} FROM chunks c WHERE c.id = ANY(%s)",
                          ([int(i) for i in ids],))
        return {int(r[0]): _chunk(r) for r in rows}

    def document_chunks(self, document_id: int) -> list[ChunkRecord]:
        return [_chunk(r) for r in self._rows(
            f"SELECT {_CHUNK_SELECT} FROM chunks c WHERE c.document_id = %s "
            "ORDER BY c.ordinal, c.id", (document_id,))]

    def chunk_by_key(self, chunk_id: str) -> ChunkRecord | None:
        rows = self._rows(f"SELECT {_CHUNK_SELECT} FROM chunks c WHERE c.chunk_id = %s",
                          (chunk_id,))
        return _chunk(rows[0]) if rows else None

    def chunk_counts(self) -> dict[int, int]:
        return {int(d): int(n) for d, n in self._rows(
            "SELECT document_id, count(*) FROM chunks GROUP BY document_id")}

    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        return _vectors(self._conn, self._info, ids)

    def _where(self, where: Filter | None) -> tuple[str, list[Any]] | None:
        return None if where is None else to_sql(where, self.fields(), "postgres",
                                                  column="c.meta")

    def _kept(self, cond: tuple[str, list[Any]]) -> np.ndarray:
        """Sorted ids of the chunks a filter keeps in this snapshot (`filtered.py`)."""
        if self._stamp is None:
            self._stamp = filtered.stamp(self._conn)
        return self._store.filter_cache.ids(self._conn, cond, self._stamp)

    def dense_search(self, queries: np.ndarray, k: int,
                     where: Filter | None = None) -> list[Run]:
        q = np.atleast_2d(queries)
        cond = self._where(where)
        if "dim" not in self._info or k <= 0:
            return [empty_run() for _ in range(len(q))]
        q = check_vectors(q, int(self._info["dim"]))
        hnsw = self._info.get("vector_index", "exact").startswith("hnsw")
        kept = None if cond is None else self._kept(cond)
        if kept is not None and (len(kept) <= filtered.EXACT_MAX or not hnsw):
            return [self._exact(row, k, kept) for row in q]
        return [self._hnsw(row, k, cond, kept) if hnsw else self._exact(row, k, None)
                for row in q]

    def _exact(self, query: np.ndarray, k: int, kept: np.ndarray | None) -> Run:
        """The k best of every row, or of the rows a filter kept, each read by its primary
        key (`score DESC` is no order the HNSW index gives, so it is not used)."""
        if kept is None:
            return _run(self._rows("SELECT id, (embedding <#> %s) * -1 AS score FROM chunks "
                                   "ORDER BY score DESC, id LIMIT %s", [query, k]))
        if not len(kept):
            return empty_run()
        return _run(self._rows("SELECT id, (embedding <#> %s) * -1 AS score FROM chunks "
                               "WHERE id = ANY(%s) ORDER BY score DESC, id LIMIT %s",
                               [query, IdArray(kept), k]))

    def _hnsw(self, query: np.ndarray, k: int, cond: tuple[str, list[Any]] | None,
              kept: np.ndarray | None) -> Run:
        """The HNSW walk: unfiltered, or with a filter that keeps many rows, walked wider."""
        sql_where, params = ("", []) if cond is None else (f"WHERE {cond[0]}", cond[1])
        ef = min(max(k, HNSW_EF_SEARCH if cond is None else filtered.FILTERED_EF), 1000)
        if ef > self._ef_search:  # for the rest of this snapshot's transaction
            self._conn.execute("SELECT set_config('hnsw.ef_search', %s, true)", (str(ef),))
            self._ef_search = ef
        # more than k rows: the walk yields them a little out of order (relaxed), so the
        # best k of more, sorted exactly here, hold more of the true top k
        rows = self._rows(f"SELECT id, (embedding <#> %s) * -1 AS score FROM chunks c "
                          f"{sql_where} ORDER BY embedding <#> %s LIMIT %s",
                          [query, *params, query, max(k, ef)])
        if len(rows) >= k:
            rows.sort(key=lambda r: (-r[1], r[0]))
            return _run(rows[:k])
        # fewer than k: a filter the graph walk gave up on, or unreachable nodes
        return self._exact(query, k, kept)

    def lexical_search(self, query: str, k: int, where: Filter | None = None) -> Run:
        cond = self._where(where)
        terms = list(dict.fromkeys(self._store.query_analyzer(self._info).terms(query)))
        if not terms or k <= 0:
            return empty_run()
        rows = self._conn.cursor(binary=True).execute(BLOCKS, (terms,)).fetchall()
        scored = score_blocks(rows, terms, self._store.lexical_settings)
        if cond is not None:  # scores are over all chunks; the filter only drops some
            keep = filtered.kept_mask(scored.ids, self._kept(cond))
            scored = Scored(scored.ids[keep], scored.scores[keep])
        best = scored.ranked(k)
        return scored.ids[best], scored.scores[best]

    def stats(self) -> dict[str, object]:
        size, vectors = self._rows(
            "SELECT pg_database_size(current_database()), (SELECT chunks FROM lexical_stats)")[0]
        return {"store": "postgresql (pgvector)",
                "vectors": int(vectors) if "dim" in self._info else 0,
                "vector_index": self._info.get("vector_index", "exact"),
                "hnsw_threshold": int(self._info.get("hnsw_threshold", self._threshold())),
                "schema": schema.SCHEMA_VERSION,
                "disk_bytes": int(size)}

    def _threshold(self) -> int:
        given = self._store.hnsw_threshold
        return DEFAULT_HNSW_THRESHOLD if given is None else given

    def verify(self) -> list[str]:
        """Problems found by cross-checking catalog, postings, statistics and vectors."""
        return _verify(self._conn, self._info)


def _run(rows: list[tuple[Any, ...]]) -> Run:
    """(ids, scores) from (id, score) rows."""
    return (np.array([r[0] for r in rows], dtype=np.int64),
            np.array([r[1] for r in rows], dtype=np.float32))


def _vectors(conn: psycopg.Connection[Any], info: dict[str, str],
             ids: Sequence[int]) -> np.ndarray:
    want = [int(i) for i in ids]
    dim = int(info.get("dim", 0))
    if not want:
        return np.zeros((0, dim), dtype=np.float32)
    found = dict(conn.cursor(binary=True).execute(
        "SELECT id, embedding FROM chunks WHERE id = ANY(%s)", (want,)).fetchall()) if dim else {}
    missing = [i for i in want if i not in found]
    if missing:
        raise KeyError(f"no vector for chunk id {missing[0]}")
    return np.stack([found[i].to_numpy() for i in want]).astype(np.float32, copy=False)


def _verify(conn: psycopg.Connection[Any], info: dict[str, str]) -> list[str]:
    problems: list[str] = []

    def one(sql: str) -> Any:
        return conn.execute(sql).fetchone()[0]  # type: ignore[index]

    n, total = conn.execute("SELECT chunks, total_len FROM lexical_stats").fetchone() or (0, 0)
    real_n, real_total = conn.execute(
        "SELECT count(*), coalesce(sum(lex_len), 0) FROM chunks").fetchone() or (0, 0)
    if (n, total) != (real_n, real_total):
        problems.append(f"lexical_stats says {n} chunks / {total} terms, the chunks table "
                        f"holds {real_n} / {real_total}")
    bad_df = one("SELECT count(*) FROM terms t FULL JOIN (SELECT term, count(*) AS df "
                 "FROM postings GROUP BY term) p USING (term) "
                 "WHERE coalesce(t.df, 0) <> coalesce(p.df, 0)")
    if bad_df:
        problems.append(f"{bad_df} terms have a document frequency that their postings lack")
    bad_len = one("SELECT count(*) FROM chunks c LEFT JOIN (SELECT chunk_id, sum(tf) AS n, "
                  "min(lex_len) AS lo, max(lex_len) AS hi FROM postings GROUP BY chunk_id) p "
                  "ON p.chunk_id = c.id WHERE coalesce(p.n, 0) <> c.lex_len "
                  "OR p.lo <> c.lex_len OR p.hi <> c.lex_len")
    if bad_len:
        problems.append(f"{bad_len} chunks disagree with their postings on their length")
    bad_blocks = one(BAD_BLOCKS)
    if bad_blocks:
        problems.append(f"{bad_blocks} posting blocks differ from the postings rows")
    if "dim" in info:
        no_vec = one("SELECT count(*) FROM chunks WHERE embedding IS NULL")
        if no_vec:
            problems.append(f"{no_vec} chunks have no vector")
        has_index = one(f"SELECT to_regclass('{HNSW_INDEX}') IS NOT NULL")
        if has_index != info.get("vector_index", "exact").startswith("hnsw"):
            problems.append(f"vector_index says {info.get('vector_index', 'exact')!r}, the HNSW "
                            f"index is {'there' if has_index else 'missing'}")
    elif real_n:
        problems.append(f"{real_n} chunks but no vector dimension recorded")
    return problems
