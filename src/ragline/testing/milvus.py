"""A throwaway Milvus standalone server for tests and benchmarks, from PyPI only.

The binaries come from the `milvus` wheel (2.3.5): the real Milvus standalone (Go + knowhere)
with an embedded etcd and local storage, not `milvus-lite`'s re-implementation. Each server
gets its own `MilvusServer` (not the module's `default_server` singleton, so a test and a
benchmark can each have one), its own base folder, and free loopback ports chosen here.
"""

from __future__ import annotations

import atexit
import shutil
import socket
import subprocess
from pathlib import Path
from types import TracebackType

from ragline.testing import reaper

#: the gRPC/internal ports of the standalone, all set to free ports (template key names)
PORT_KEYS = ("etcd_port", "proxy_port", "proxy_internal_port", "root_coord_port",
             "query_coord_port", "query_node_port", "index_coord_port", "index_node_port",
             "data_coord_port", "data_node_port")


class MilvusServerError(RuntimeError):
    """The server could not start; the message carries the reason and the log's tail."""


def free_ports(n: int) -> list[int]:
    """n distinct free TCP ports on 127.0.0.1 (held together while choosing)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class MilvusTestServer:
    """One Milvus standalone in `base_dir` (binaries, config, etcd, data, logs)."""

    def __init__(self, base_dir: Path | str, timeout: float = 180.0) -> None:
        self.base_dir = Path(base_dir).resolve()
        self.timeout = timeout
        self.host = "127.0.0.1"
        self.port: int | None = None
        self._server: object | None = None

    @property
    def url(self) -> str:
        """The store URL of this server: `milvus://127.0.0.1:PORT`."""
        if self.port is None:
            raise MilvusServerError("the Milvus server has not been started")
        return f"milvus://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        proc = getattr(self._server, "server_proc", None)
        return proc.pid if proc is not None else None

    def start(self) -> MilvusTestServer:
        """Start and wait until the health endpoint says OK and gRPC answers."""
        try:
            from milvus import MilvusServer, MilvusServerConfig
        except ImportError as e:
            raise MilvusServerError(f"the Milvus test server needs the `milvus` package "
                                    f"(pip install 'ragline[test]'): {e}") from None
        self.base_dir.mkdir(parents=True, exist_ok=True)
        found = free_ports(len(PORT_KEYS) + 1)
        ports = dict(zip(PORT_KEYS, found, strict=False))
        template = self._template(ports["etcd_port"], found[-1])
        config = MilvusServerConfig(template=str(template))
        config.glog_conf_file = str(template.parent / "glog.conf")  # set only for its own
        server = MilvusServer(config, wait_for_started=False, **ports)
        server.set_base_dir(str(self.base_dir))
        server.config.set("etcd_config_path", str(self.base_dir / "embedEtcd.yaml"))
        self._server = server
        atexit.register(self.stop)  # no server outlives an interrupted script
        try:
            server.start()
            server.wait_started(timeout=int(self.timeout * 1000))
            if self.pid is not None:
                reaper.watch(self.pid, grace=5.0)  # stopped even if this process is killed
        except Exception as exc:
            self.stop()
            raise MilvusServerError(f"Milvus did not start: {exc}\n{self._log_tail()}") from exc
        self.port = int(ports["proxy_port"])
        return self

    def _template(self, client_port: int, peer_port: int) -> Path:
        """The wheel's config template plus `etcd.config.path`: its embedded etcd would
        otherwise take the fixed peer port 2380, and a second server could not start."""
        import milvus

        source = Path(milvus.__file__).parent / "data" / "config.yaml.template"
        text = source.read_text(encoding="utf-8")
        anchor = "  use:\n    embed: true"
        if anchor not in text:
            raise MilvusServerError(f"{source}: no embedded etcd section to configure")
        text = text.replace(anchor, "  config:\n    path: {{ etcd_config_path }}\n" + anchor, 1)
        target = self.base_dir / "config.yaml.template"
        target.write_text(text, encoding="utf-8")
        shutil.copy(source.parent / "glog.conf", self.base_dir / "glog.conf")
        client, peer = f"http://127.0.0.1:{client_port}", f"http://127.0.0.1:{peer_port}"
        (self.base_dir / "embedEtcd.yaml").write_text(
            f"name: ragline-etcd\nlisten-client-urls: {client}\nadvertise-client-urls: "
            f"{client}\nlisten-peer-urls: {peer}\ninitial-advertise-peer-urls: {peer}\n"
            f"initial-cluster: ragline-etcd={peer}\n", encoding="utf-8")
        return target

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds: a throwaway server's data is dropped
        anyway, and a graceful Milvus shutdown can take 30 s."""
        atexit.unregister(self.stop)
        server, self._server = self._server, None
        if server is None:
            return
        proc = getattr(server, "server_proc", None)
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        server.stop()  # type: ignore[attr-defined]  # closes its log files

    def _log_tail(self, lines: int = 30) -> str:
        log = self.base_dir / "logs" / "milvus-stderr.log"
        if not log.exists():
            return "(no log)"
        tail = log.read_text(errors="replace").splitlines()[-lines:]
        return f"--- last lines of {log}:\n" + "\n".join(tail)

    def __enter__(self) -> MilvusTestServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
