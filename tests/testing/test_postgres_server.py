"""The throwaway PostgreSQL + pgvector server that the PostgreSQL backend's tests run on."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import psutil
import psycopg
import pytest
from pgvector.psycopg import register_vector

from ragline.testing.postgres import OS_USER, PostgresError, PostgresServer


def _server_processes(server: PostgresServer) -> list[psutil.Process]:
    """The postmaster and its children (checkpointer, walwriter, ...): all of this data dir."""
    postmaster = psutil.Process(server.postmaster_pid)
    return [postmaster, *postmaster.children(recursive=True)]


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_connects_with_password_over_tcp(postgres_server: PostgresServer) -> None:
    url = postgres_server.url
    assert url.startswith(f"postgresql://ragline:{postgres_server.password}@127.0.0.1:")
    with psycopg.connect(url) as conn:
        version, user = conn.execute("SELECT current_setting('server_version_num')::int, "
                                     "current_user").fetchone()
        fsync, max_conn = conn.execute("SELECT current_setting('fsync'), "
                                       "current_setting('max_connections')").fetchone()
    assert version >= 180000 and user == "ragline"
    assert (fsync, max_conn) == ("on", "50")


def test_create_extension_vector_and_query(postgres_server: PostgresServer) -> None:
    url = postgres_server.create_database("no_ext", extensions=())
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION vector")
            (score,) = conn.execute("SELECT '[1,2,3]'::vector <#> '[1,0,0]'").fetchone()
            version = conn.execute("SELECT extversion FROM pg_extension "
                                   "WHERE extname = 'vector'").fetchone()[0]
    finally:
        postgres_server.drop_database("no_ext")
    assert score == -1.0  # <#> is the negative inner product
    assert tuple(int(p) for p in version.split(".")[:2]) >= (0, 8)


def test_postgres_url_is_a_fresh_database_with_vector(postgres_url: str) -> None:
    with psycopg.connect(postgres_url) as conn:
        register_vector(conn)
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
                            ).fetchone()[0] == 0
        conn.execute("CREATE TABLE chunks (id bigint PRIMARY KEY, embedding vector(3))")
        conn.execute("INSERT INTO chunks VALUES (1, %s), (2, %s)",
                     (np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])))
        rows = conn.execute("SELECT id FROM chunks ORDER BY embedding <#> %s LIMIT 1",
                            (np.array([0.9, 0.1, 0.0]),)).fetchall()
    assert rows == [(1,)]


def test_wrong_password_is_refused(postgres_server: PostgresServer) -> None:
    with psycopg.connect(postgres_server.app_url) as conn:
        user, is_super = conn.execute("SELECT current_user, usesuper FROM pg_user "
                                      "WHERE usename = current_user").fetchone()
    assert (user, is_super) == (postgres_server.app_user, False)
    for user in (postgres_server.user, postgres_server.app_user):
        bad = postgres_server.url_for(postgres_server.dbname, user, "not-the-password")
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(bad, connect_timeout=10).close()


def test_stop_leaves_no_server_process(tmp_path: Path) -> None:
    with PostgresServer(tmp_path / "pg") as server:
        # the postmaster first; a backend of a connection just closed may still be exiting
        procs = [p for p in _server_processes(server) if _alive(p)]
        assert len(procs) > 1 and procs[0].pid == server.postmaster_pid
        if os.geteuid() == 0:  # postgres refuses root: it must run as the unprivileged user
            assert {p.username() for p in procs} == {OS_USER}
        url = server.url
    assert not server.running
    assert not (server.data_dir / "postmaster.pid").exists()
    assert not [p.pid for p in procs if _alive(p)]
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=5).close()


def test_restarts_on_the_same_data_after_a_crash(tmp_path: Path) -> None:
    server = PostgresServer(tmp_path / "pg").start()
    try:
        with psycopg.connect(server.url) as conn:
            conn.execute("CREATE TABLE t (x int)")
            conn.execute("INSERT INTO t VALUES (42)")
        server.stop(mode="immediate")  # no checkpoint: the row must come back from the WAL
        server.start()
        with psycopg.connect(server.url) as conn:
            assert conn.execute("SELECT x FROM t").fetchall() == [(42,)]
    finally:
        server.stop()


def test_failed_start_reports_the_server_log(tmp_path: Path) -> None:
    server = PostgresServer(tmp_path / "pg", settings={"shared_buffers": "lots"})
    with pytest.raises(PostgresError, match=r"(?s)pg_ctl start failed.*shared_buffers"):
        server.start()
    assert not server.running
