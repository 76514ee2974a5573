"""SIGTERM on ``connector run``: stop reading, flush within the grace period, exit 0."""

from __future__ import annotations

import asyncio
import signal
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from connector.embedded.kafka import MockCluster
from connector.embedded.registry import RegistryServer
from connector.simulators.tplus_market import TplusMarketSimulator
from tests.kafka_reader import TopicReader
from tests.running import log_until, run_process

TOPICS = ["tplus.depth", "tplus.trades", "tplus.klines", "connector.dlq"]


@dataclass
class Peers:
    cluster: MockCluster
    registry_url: str
    venue_url: str


@pytest.fixture
async def peers() -> AsyncIterator[Peers]:
    with MockCluster(brokers=1) as cluster, RegistryServer() as registry:
        for topic in TOPICS:
            cluster.create_topic(topic, partitions=2)
        async with TplusMarketSimulator(["1"], depth_interval_s=0.01, trade_interval_s=0.01) as sim:
            yield Peers(cluster, registry.start(), sim.base_url)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _queued(port: int) -> float:
    """The connector's own count of records waiting for acknowledgement."""
    async with httpx.AsyncClient() as http:
        body = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    for line in body.splitlines():
        if line.startswith("connector_producer_queue_messages "):
            return float(line.split()[1])
    raise AssertionError("connector_producer_queue_messages is not exported")


def _config(tmp_path: Path, peers: Peers, grace_s: float, port: int = 0) -> Path:
    path = tmp_path / "connector.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "shutdown-test",
                "kafka": {"bootstrap_servers": peers.cluster.bootstrap_servers},
                "schema_registry": {"url": peers.registry_url},
                "metrics": {"host": "127.0.0.1", "port": port},
                "shutdown_grace_s": grace_s,
                "logging": {"level": "INFO", "json_format": True},
                "tplus": {"market_data": {"base_url": peers.venue_url, "assets": ["1"]}},
            }
        )
    )
    return path


async def test_sigterm_flushes_and_exits_zero(tmp_path: Path, peers: Peers) -> None:
    proc = await run_process(_config(tmp_path, peers, grace_s=10))
    reader = TopicReader(peers.cluster.bootstrap_servers, peers.registry_url, ["tplus.trades"])
    try:
        await asyncio.to_thread(reader.poll_until, lambda rs: len(rs["tplus.trades"]) >= 5)
    finally:
        reader.close()
    proc.send_signal(signal.SIGTERM)
    logs = await log_until(proc, "stopped")
    assert await asyncio.wait_for(proc.wait(), timeout=30) == 0
    assert logs[-1]["unflushed_records"] == 0
    assert any(entry["msg"] == "stopping: flushing the producer" for entry in logs)


async def test_records_that_cannot_be_flushed_are_counted_and_exit_is_still_zero(
    tmp_path: Path, peers: Peers
) -> None:
    port = _free_port()
    proc = await run_process(_config(tmp_path, peers, grace_s=1, port=port))
    reader = TopicReader(peers.cluster.bootstrap_servers, peers.registry_url, ["tplus.trades"])
    try:
        await asyncio.to_thread(reader.poll_until, lambda rs: len(rs["tplus.trades"]) >= 5)
    finally:
        reader.close()
    peers.cluster.set_broker_down(-1)
    # Observe the other process until records are stuck behind the outage.
    for _ in range(200):
        if await _queued(port) > 0:
            break
        await asyncio.sleep(0.05)
    assert await _queued(port) > 0
    proc.send_signal(signal.SIGTERM)
    logs = await log_until(proc, "stopped")
    assert await asyncio.wait_for(proc.wait(), timeout=30) == 0
    unflushed = logs[-1]["unflushed_records"]
    assert isinstance(unflushed, int) and unflushed > 0, logs[-12:]
    lost = [e for e in logs if e["msg"] == "records left undelivered at shutdown"]
    assert lost and lost[0]["count"] == unflushed
    peers.cluster.set_broker_up(-1)
