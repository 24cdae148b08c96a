"""A watchdog that stops a throwaway server once the process that started it is gone.

Why: the test servers stop themselves at exit (`atexit`), but a SIGTERM or SIGKILL to pytest
runs no exit handlers, and the PostgreSQL and Milvus servers were left running (with their
ports and disk). `watch` starts a small detached process that waits for the owner to die, then
sends the server `sig` and, after `grace` seconds, SIGKILL. It leaves by itself when the server
stops first (the normal case). It is its own session, so a Ctrl-C to the terminal's process
group does not take it down before it has done its job.

    python -m ragline.testing.reaper OWNER_PID SERVER_PID SIGNAL GRACE
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil

POLL_S = 0.5  # how often the owner is looked at: a daemon's wait, not a test's


def watch(server_pid: int, sig: int = signal.SIGTERM, grace: float = 10.0) -> None:
    """Stop `server_pid` with `sig` (then SIGKILL) once this process has gone."""
    subprocess.Popen([sys.executable, "-m", "ragline.testing.reaper", str(os.getpid()),
                      str(server_pid), str(int(sig)), str(grace)],
                     start_new_session=True, stdin=subprocess.DEVNULL,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def alive(proc: psutil.Process | None) -> bool:
    """Running and not a zombie (a killed owner stays one until its parent reaps it)."""
    try:
        return proc is not None and proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def process(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except psutil.NoSuchProcess:
        return None


def reap(owner_pid: int, server_pid: int, sig: int, grace: float) -> None:
    """Wait while both live; if the owner goes first, stop the server."""
    owner, server = process(owner_pid), process(server_pid)
    while alive(server) and alive(owner):
        time.sleep(POLL_S)
    if server is None or not alive(server):
        return  # stopped by its owner: nothing to do
    try:
        server.send_signal(sig)
        server.wait(timeout=grace)
    except psutil.TimeoutExpired:
        server.kill()
    except psutil.NoSuchProcess:
        pass


if __name__ == "__main__":
    owner_arg, server_arg, sig_arg, grace_arg = sys.argv[1:5]
    reap(int(owner_arg), int(server_arg), int(sig_arg), float(grace_arg))
