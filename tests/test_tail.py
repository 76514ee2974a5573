"""``connector tail`` fails with one line and a non-zero exit, and says when nothing came."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from confluent_kafka import Producer

from connector.embedded.kafka import MockCluster
from connector.embedded.registry import RegistryServer
from connector.tail import tail, tail_book


@pytest.fixture
def cluster() -> Iterator[MockCluster]:
    with MockCluster() as c:
        c.create_topic("present", partitions=1)
        yield c


@pytest.fixture
def registry() -> Iterator[RegistryServer]:
    with RegistryServer() as r:
        yield r


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _tail(topic: str, bootstrap: str, registry_url: str, **kwargs: float) -> int:
    return tail(
        topic,
        bootstrap,
        registry_url,
        from_beginning=True,
        max_records=None,
        idle_timeout_s=kwargs.get("idle_timeout_s", 1.0),
        metadata_timeout_s=kwargs.get("metadata_timeout_s", 10.0),
    )


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_an_unreachable_registry_is_one_line_and_exit_3(
    cluster: MockCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    assert _tail("present", cluster.bootstrap_servers, url) == 3
    line = _one_line(capsys.readouterr().err)
    assert "schema registry unreachable" in line and url in line


def test_no_broker_is_one_line_and_exit_3(
    registry: RegistryServer, capsys: pytest.CaptureFixture[str]
) -> None:
    bootstrap = f"127.0.0.1:{_closed_port()}"
    assert _tail("present", bootstrap, registry.url, metadata_timeout_s=1.0) == 3
    line = _one_line(capsys.readouterr().err)
    assert f"no Kafka broker at {bootstrap} answered within 1 s" in line


def test_an_unknown_topic_exits_1(
    cluster: MockCluster, registry: RegistryServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _tail("absent", cluster.bootstrap_servers, registry.url) == 1
    line = _one_line(capsys.readouterr().err)
    assert f"topic absent does not exist at {cluster.bootstrap_servers}" in line


def test_an_idle_timeout_without_records_says_so_and_exits_1(
    cluster: MockCluster, registry: RegistryServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _tail("present", cluster.bootstrap_servers, registry.url, idle_timeout_s=0.5) == 1
    assert _one_line(capsys.readouterr().err) == (
        "connector tail: no records on present within 0.5 s"
    )


def test_records_then_an_idle_timeout_exit_0(
    cluster: MockCluster, registry: RegistryServer, capsys: pytest.CaptureFixture[str]
) -> None:
    producer = Producer({"bootstrap.servers": cluster.bootstrap_servers})
    producer.produce("present", b"not avro", key=b"k")
    assert producer.flush(10) == 0
    assert _tail("present", cluster.bootstrap_servers, registry.url, idle_timeout_s=0.5) == 0
    captured = capsys.readouterr()
    assert '"raw": "not avro"' in captured.out
    assert _one_line(captured.err) == "connector tail: 1 records; none for 0.5 s"


def _tail_book(bootstrap: str, registry_url: str) -> int:
    return tail_book(
        "1",
        bootstrap,
        registry_url,
        books_topic="tplus.books",
        depth_topic="tplus.depth",
        max_records=None,
        idle_timeout_s=1.0,
        metadata_timeout_s=2.0,
    )


def test_a_book_tail_without_a_registry_or_a_broker_is_one_line_and_exit_3(
    cluster: MockCluster, registry: RegistryServer, capsys: pytest.CaptureFixture[str]
) -> None:
    closed = f"127.0.0.1:{_closed_port()}"
    assert _tail_book(cluster.bootstrap_servers, f"http://{closed}") == 3
    assert "schema registry unreachable" in _one_line(capsys.readouterr().err)
    assert _tail_book(closed, registry.start()) == 3
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("connector tail: Kafka") and f"--bootstrap {closed}" in line
