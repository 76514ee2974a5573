"""SIGTERM on ``connector run``: stop reading, flush within the grace period; what the
brokers did not take stays in the spool for the next start (exit 0), or without a spool
is purged, counted, and makes the exit code non-zero."""

from __future__ import annotations

import asyncio
import signal
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    sim: TplusMarketSimulator


@pytest.fixture
async def peers() -> AsyncIterator[Peers]:
    with MockCluster(brokers=1) as cluster, RegistryServer() as registry:
        for topic in TOPICS:
            cluster.create_topic(topic, partitions=2)
        async with TplusMarketSimulator(["1"], depth_interval_s=0.01, trade_interval_s=0.01) as sim:
            yield Peers(cluster, registry.start(), sim.base_url, sim)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _metric(port: int, series: str) -> float:
    """One series of the other process's /metrics (``name{labels}`` as exported)."""
    async with httpx.AsyncClient() as http:
        body = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    for line in body.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[1])
    raise AssertionError(f"{series} is not exported")


async def _queued(port: int) -> float:
    """The connector's own count of records waiting for acknowledgement."""
    return await _metric(port, "connector_producer_queue_messages")


def _config(
    tmp_path: Path, peers: Peers, grace_s: float, port: int = 0, spool: bool = True
) -> Path:
    path = tmp_path / "connector.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "shutdown-test",
                "kafka": {"bootstrap_servers": peers.cluster.bootstrap_servers},
                "schema_registry": {"url": peers.registry_url},
                "metrics": {"host": "127.0.0.1", "port": port},
                "shutdown_grace_s": grace_s,
                "spool": {"enabled": spool, "path": str(tmp_path / "spool")},
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


async def _stuck_behind_an_outage(tmp_path: Path, peers: Peers, port: int, spool: bool) -> Any:
    """A running connector whose records wait for brokers that are down."""
    proc = await run_process(_config(tmp_path, peers, grace_s=1, port=port, spool=spool))
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
    return proc


async def test_without_a_spool_purged_records_are_counted_and_the_exit_code_says_so(
    tmp_path: Path, peers: Peers
) -> None:
    port = _free_port()
    proc = await _stuck_behind_an_outage(tmp_path, peers, port, spool=False)
    proc.send_signal(signal.SIGTERM)
    logs = await log_until(proc, "stopped")
    assert await asyncio.wait_for(proc.wait(), timeout=30) == 4
    unflushed = logs[-1]["unflushed_records"]
    assert isinstance(unflushed, int) and unflushed > 0, logs[-12:]
    lost = [e for e in logs if e["msg"] == "records left undelivered at shutdown"]
    assert lost and lost[0]["count"] == unflushed
    peers.cluster.set_broker_up(-1)


async def test_sigterm_in_an_outage_leaves_records_in_the_spool_and_a_restart_delivers_them(
    tmp_path: Path, peers: Peers
) -> None:
    port = _free_port()
    proc = await _stuck_behind_an_outage(tmp_path, peers, port, spool=True)
    # Stop the venue and let the connector read all it sent, so every trade is accepted.
    peers.sim.pause()
    sent = {t["trade_id"] for t in peers.sim.emitted.trades}
    frames = (
        'connector_frames_received_total{stream="tplus.trades",subscription="all",venue="tplus"}'
    )
    for _ in range(600):  # another process: observe its metrics until the condition holds
        if await _metric(port, frames) >= len(sent):
            break
        await asyncio.sleep(0.05)
    assert await _metric(port, frames) >= len(sent)
    proc.send_signal(signal.SIGTERM)
    logs = await log_until(proc, "stopped")
    assert await asyncio.wait_for(proc.wait(), timeout=30) == 0
    assert logs[-1]["unflushed_records"] == 0
    kept = [e for e in logs if e["msg"] == "records left in the spool for the next start"]
    assert kept and isinstance(kept[0]["count"], int) and kept[0]["count"] > 0, logs[-12:]

    peers.cluster.set_broker_up(-1)
    again = await run_process(_config(tmp_path, peers, grace_s=5, port=_free_port()))
    reader = TopicReader(peers.cluster.bootstrap_servers, peers.registry_url, ["tplus.trades"])
    try:
        got = await asyncio.to_thread(
            reader.poll_until,
            lambda rs: sent <= {r.value["trade_id"] for r in rs["tplus.trades"]},
            60,
        )
    finally:
        reader.close()
        again.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(again.wait(), timeout=30) == 0
    ids = [r.value["trade_id"] for r in got["tplus.trades"]]
    assert sent - set(ids) == set()
    # A replayed record carries the id it was spooled under, so duplicates can be dropped.
    assert all(r.headers["event_id"].startswith(b"shutdown-test:") for r in got["tplus.trades"])
