"""Connecting to PostgreSQL and the tables ragline keeps there.

A URL names the server and database; ragline's own options ride in its query string
(`?hnsw_threshold=...`) and are taken out before libpq sees it. The password never leaves
this module: `location` and every message carry the URL without it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

import psycopg
from pgvector.psycopg import register_vector
from psycopg.conninfo import conninfo_to_dict

from ragline.errors import RaglineError
from ragline.store.postgres.lexical import BlockChanges

SCHEMA_VERSION = "2"
#: marks the tables as ragline's, and their version (info() stays empty for a new store)
SCHEMA_COMMENT = f"ragline schema {SCHEMA_VERSION}"
#: version 1 lacked the posting blocks; opening one adds them (`_upgrade`)
SCHEMA_V1 = "ragline schema 1"
#: pg_advisory_xact_lock keys: one serializes writers, one the first schema creation
WRITE_LOCK = 0x7261676C696E6501  # "raglin" + 1
SCHEMA_LOCK = 0x7261676C696E6502
#: query-string options that are ragline's, not libpq's
STORE_OPTIONS = ("hnsw_threshold",)
CONNECT_TIMEOUT = 10

# The vector column is added when the dimension becomes known (`vector_column`).
# Postings carry the chunk's length so BM25 reads the covering primary key alone;
# `terms.df`, `lexical_stats` and `lexical_blocks` are kept in step by the writer, in its
# transaction. Blocks are stored uncompressed (EXTERNAL): a search reads them whole.
# `lexical_stats.stamp` is new at every commit that changed anything: what a filter keeps
# is cached under it (`filtered.py`).
VERSION_2 = """
ALTER TABLE lexical_stats ADD COLUMN IF NOT EXISTS stamp bigint NOT NULL DEFAULT 0;
CREATE TABLE IF NOT EXISTS lexical_blocks (
    term text NOT NULL,
    r bigint NOT NULL,
    ids bytea NOT NULL,
    tfs bytea NOT NULL,
    lens bytea NOT NULL,
    PRIMARY KEY (term, r)
);
ALTER TABLE lexical_blocks ALTER COLUMN ids SET STORAGE EXTERNAL,
    ALTER COLUMN tfs SET STORAGE EXTERNAL, ALTER COLUMN lens SET STORAGE EXTERNAL;
CREATE INDEX IF NOT EXISTS lexical_blocks_range ON lexical_blocks (r);
"""
SCHEMA = f"""
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE IF NOT EXISTS ragline_meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    id bigserial PRIMARY KEY,
    path text NOT NULL UNIQUE,
    hash text NOT NULL,
    size bigint NOT NULL,
    mtime double precision NOT NULL,
    ingested_at double precision NOT NULL,
    meta jsonb NOT NULL DEFAULT '{{}}'
);
CREATE SEQUENCE IF NOT EXISTS chunk_ids AS bigint;
CREATE TABLE IF NOT EXISTS chunks (
    id bigint PRIMARY KEY,
    chunk_id text NOT NULL UNIQUE,
    document_id bigint NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    source text NOT NULL,
    ordinal integer NOT NULL,
    text text NOT NULL,
    text_hash text NOT NULL,
    page integer,
    heading text,
    title text,
    start integer NOT NULL,
    "end" integer NOT NULL,
    meta jsonb NOT NULL DEFAULT '{{}}',
    lex_len integer NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_document ON chunks (document_id);
CREATE INDEX IF NOT EXISTS chunks_text_hash ON chunks (text_hash);
CREATE TABLE IF NOT EXISTS fields (name text PRIMARY KEY, type text NOT NULL);
CREATE TABLE IF NOT EXISTS postings (
    term text NOT NULL,
    chunk_id bigint NOT NULL REFERENCES chunks(id) ON DELETE CASCADE,
    tf integer NOT NULL,
    lex_len integer NOT NULL,
    PRIMARY KEY (term, chunk_id) INCLUDE (tf, lex_len)
);
CREATE INDEX IF NOT EXISTS postings_chunk ON postings (chunk_id);
CREATE TABLE IF NOT EXISTS terms (term text PRIMARY KEY, df integer NOT NULL);
CREATE TABLE IF NOT EXISTS lexical_stats (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    chunks bigint NOT NULL,
    total_len bigint NOT NULL
);
INSERT INTO lexical_stats VALUES (true, 0, 0) ON CONFLICT DO NOTHING;
{VERSION_2}
COMMENT ON TABLE ragline_meta IS '{SCHEMA_COMMENT}';
"""


def vector_column(dim: int) -> list[str]:
    """The embedding column, once the dimension is known. MAIN storage keeps vectors in the
    row (pgvector's default, EXTERNAL, moves them out of line once a row passes 2 kB, which
    makes an exact scan fetch each from TOAST)."""
    return [f"ALTER TABLE chunks ADD COLUMN embedding vector({int(dim)})",
            "ALTER TABLE chunks ALTER COLUMN embedding SET STORAGE MAIN"]


@dataclass(frozen=True)
class Target:
    """Where a store lives: libpq's conninfo (secret), and what may be shown."""

    conninfo: str
    location: str  # the URL without its password
    where: str  # host:port/database, for messages
    password: str = ""
    options: dict[str, str] = field(default_factory=dict)

def parse_url(url: str) -> Target:
    """Split a postgresql:// URL into libpq's part and ragline's options."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    options = {k: v for k, v in query if k in STORE_OPTIONS}
    libpq = [(k, v) for k, v in query if k not in STORE_OPTIONS]
    userinfo, at, hosts = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    password = unquote(parts.password or "") or dict(libpq).get("password", "")
    conninfo = _join(parts.scheme, parts.netloc, parts.path, libpq)
    shown = _join(parts.scheme, f"{user}@{hosts}" if at else hosts, parts.path,
                  [(k, v) for k, v in query if k != "password"])
    try:
        info = conninfo_to_dict(conninfo)
    except psycopg.Error as e:
        raise RaglineError(f"invalid PostgreSQL URL {shown}: {_reason(e, password)}") from None
    host = info.get("host") or info.get("hostaddr") or "localhost"
    where = f"{host}:{info.get('port') or 5432}/{info.get('dbname') or info.get('user') or ''}"
    return Target(conninfo, shown, where, password, options)


def _join(scheme: str, netloc: str, path: str, query: list[tuple[str, str]]) -> str:
    """A URL again (urlunsplit would drop the // of `postgresql:///db?host=/run/pg`)."""
    tail = f"?{urlencode(query, safe='/:,')}" if query else ""
    return f"{scheme}://{netloc}{path}{tail}"


def _reason(exc: BaseException, password: str = "") -> str:
    """The useful line of a libpq error: 'Connection refused', 'password authentication
    failed for user "x"', ... without the server address libpq repeats."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    line = lines[0] if lines else type(exc).__name__
    line = line.rsplit(" failed: ", 1)[-1]
    line = re.sub(r"^(FATAL|ERROR):\s+", "", line)
    line = re.sub(r"\s+", " ", line)
    for secret in {password, quote(password, safe="")} - {""}:
        line = line.replace(secret, "***")
    return line


def connect(target: Target, vector: bool = True, **settings: Any) -> psycopg.Connection[Any]:
    """A connection (pgvector's types registered unless `vector` is false); a failure is one
    RaglineError line naming the server, never the password."""
    kwargs: dict[str, Any] = dict(settings)
    if "connect_timeout" not in conninfo_to_dict(target.conninfo):
        kwargs["connect_timeout"] = CONNECT_TIMEOUT
    try:
        conn = psycopg.connect(target.conninfo, **kwargs)
    except psycopg.Error as e:
        raise RaglineError(f"cannot connect to PostgreSQL at {target.where}: "
                           f"{_reason(e, target.password)}") from None
    if vector:
        try:
            register_vector(conn)
        except psycopg.Error as e:
            conn.close()
            raise server_error(target, e) from None
    return conn


def server_error(target: Target, exc: psycopg.Error) -> RaglineError:
    """A server or connection failure met while working, as one line."""
    return RaglineError(f"PostgreSQL at {target.where}: {_reason(exc, target.password)}")


def create_schema(target: Target) -> psycopg.Connection[Any]:
    """Create the tables unless they are there (then no DDL runs, so no lock is taken that
    a running writer holds); returns the connection, vector types registered."""
    conn = connect(target, vector=False)
    try:
        with conn.transaction():
            if _schema_version(conn) is None:
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                if _schema_version(conn) is None:  # not made meanwhile by another process
                    conn.execute(SCHEMA)  # type: ignore[arg-type]
            elif _schema_version(conn) == SCHEMA_V1:
                _upgrade(conn)
        version = _schema_version(conn)
        conn.rollback()
        if version != SCHEMA_COMMENT:
            raise RaglineError(f"PostgreSQL at {target.where}: the tables are of another "
                               f"ragline version ({version!r}, this one needs "
                               f"{SCHEMA_COMMENT!r})")
        register_vector(conn)
    except psycopg.Error as e:
        conn.close()
        raise server_error(target, e) from None
    except BaseException:
        conn.close()
        raise
    return conn


def _upgrade(conn: psycopg.Connection[Any]) -> None:
    """Version 1 to 2: the posting blocks, made from the postings rows, and the commit stamp,
    with writers held off (they take the write lock) so that no commit goes by without them."""
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
    if _schema_version(conn) == SCHEMA_V1:  # not upgraded meanwhile by another process
        conn.execute(VERSION_2)  # type: ignore[arg-type]
        BlockChanges(every=True).write(conn)
        conn.execute(f"COMMENT ON TABLE ragline_meta IS '{SCHEMA_COMMENT}'")  # type: ignore[arg-type]


def _schema_version(conn: psycopg.Connection[Any]) -> str | None:
    row = conn.execute("SELECT obj_description(to_regclass('ragline_meta'), 'pg_class')"
                       ).fetchone()
    return row[0] if row else None
