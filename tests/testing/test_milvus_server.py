"""The Milvus test server is the real engine, reachable on its own loopback port."""

from __future__ import annotations

from pymilvus import connections, utility

from ragline.testing.milvus import MilvusTestServer, free_ports


def test_server_answers_on_its_port(milvus_server: MilvusTestServer) -> None:
    assert milvus_server.url == f"milvus://127.0.0.1:{milvus_server.port}"
    connections.connect("server-test", host="127.0.0.1", port=milvus_server.port)
    try:
        assert utility.get_server_version(using="server-test").startswith("v2.3.")
    finally:
        connections.disconnect("server-test")


def test_free_ports_are_distinct_and_bindable() -> None:
    ports = free_ports(5)
    assert len(set(ports)) == 5 and all(1024 <= p < 65536 for p in ports)


def test_a_second_server_runs_beside_the_first(milvus_server: MilvusTestServer,
                                               tmp_path) -> None:
    """Every port is chosen here, the embedded etcd's too (its default peer port is fixed)."""
    with MilvusTestServer(tmp_path / "second") as second:
        assert second.port != milvus_server.port
        connections.connect("second", host="127.0.0.1", port=second.port)
        try:
            assert utility.get_server_version(using="second").startswith("v2.3.")
        finally:
            connections.disconnect("second")
        assert "listen-peer-urls: http://127.0.0.1:" in (
            tmp_path / "second" / "embedEtcd.yaml").read_text()
