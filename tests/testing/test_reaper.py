"""The watchdog that stops a test server whose owner was killed (no exit handlers ran)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil

SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]


def start_reaper(owner: subprocess.Popen[bytes], server: subprocess.Popen[bytes]
                 ) -> subprocess.Popen[bytes]:
    """The watchdog as `watch` starts it, for an owner other than this process."""
    return subprocess.Popen([sys.executable, "-m", "ragline.testing.reaper", str(owner.pid),
                             str(server.pid), str(int(signal.SIGTERM)), "10"])


def test_the_server_is_stopped_once_its_owner_dies() -> None:
    owner, server = subprocess.Popen(SLEEPER), subprocess.Popen(SLEEPER)
    try:
        watcher = start_reaper(owner, server)
        assert server.poll() is None and watcher.poll() is None  # the owner lives
        owner.kill()  # not reaped yet: a zombie, as a killed pytest is until make reaps it
        assert server.wait(timeout=30) == -signal.SIGTERM
        assert watcher.wait(timeout=30) == 0
    finally:
        for p in (owner, server):
            p.kill()
            p.wait()


def test_a_server_stopped_by_its_owner_ends_the_watch() -> None:
    owner, server = subprocess.Popen(SLEEPER), subprocess.Popen(SLEEPER)
    try:
        watcher = start_reaper(owner, server)
        server.terminate()
        server.wait()
        assert watcher.wait(timeout=30) == 0
        assert owner.poll() is None  # the owner was not touched
    finally:
        for p in (owner, server):
            p.kill()
            p.wait()


def test_a_killed_test_run_leaves_no_postgres_behind(tmp_path: Path) -> None:
    """SIGKILL to the process that started PostgreSQL: the postmaster still goes."""
    script = textwrap.dedent(f"""
        import json, sys, threading
        from ragline.testing.postgres import PostgresServer
        server = PostgresServer({str(tmp_path / "pg")!r}).start()
        print(json.dumps({{"pid": server.postmaster_pid}}), flush=True)
        threading.Event().wait()  # until killed
    """)
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        line = owner.stdout.readline() if owner.stdout else ""
        postmaster = psutil.Process(json.loads(line)["pid"])
        assert postmaster.is_running()
    finally:
        owner.kill()
        owner.wait()
    postmaster.wait(timeout=60)  # raises TimeoutExpired if the server outlives its owner
    assert not (tmp_path / "pg" / "data" / "postmaster.pid").exists()  # a clean (fast) stop
