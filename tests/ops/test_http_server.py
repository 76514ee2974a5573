"""The operations port answers /metrics, /healthz and /readyz over real HTTP."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from connector.ops.health import Health
from connector.ops.http_server import OpsServer
from connector.ops.metrics import Metrics
from tests.conftest import sample
from tests.process_usage import open_fds, rss_mib


@pytest.fixture
async def ops(metrics: Metrics, health: Health) -> AsyncIterator[str]:
    server = OpsServer(metrics.registry, health, "127.0.0.1", 0)
    port = await server.start()
    yield f"http://127.0.0.1:{port}"
    await server.stop()


async def test_metrics_are_served_in_prometheus_format(ops: str, metrics: Metrics) -> None:
    metrics.frames_received.labels("tplus", "depth", "1").inc(3)
    metrics.last_message.slot("tplus", "depth", "1")
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{ops}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    body = response.text
    assert (
        'connector_frames_received_total{stream="depth",subscription="1",venue="tplus"} 3.0' in body
    )
    assert "connector_seconds_since_last_message{" in body


async def test_readiness_follows_the_conditions(ops: str, health: Health) -> None:
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"{ops}/readyz")).status_code == 503  # nothing reported yet
        health.set("kafka", True)
        health.set("tplus.depth.1", False, "connect_failed")
        response = await client.get(f"{ops}/readyz")
        assert response.status_code == 503
        assert response.json()["conditions"]["tplus.depth.1"] == {
            "ok": False,
            "detail": "connect_failed",
        }
        health.set("tplus.depth.1", True)
        assert (await client.get(f"{ops}/readyz")).status_code == 200
        assert (await client.get(f"{ops}/healthz")).text == "ok\n"
        assert (await client.get(f"{ops}/nope")).status_code == 404
        assert (await client.post(f"{ops}/metrics")).status_code == 405


# The server runs in a child so that its descriptors and memory are measured
# apart from the 3,000 client sockets this process opens.
_CHILD = """
import asyncio, sys
from prometheus_client import CollectorRegistry
from connector.ops.health import Health
from connector.ops.http_server import OpsServer

async def main() -> None:
    server = OpsServer(CollectorRegistry(), Health(), "127.0.0.1", 0,
                       header_timeout_s=float(sys.argv[1]), max_connections=int(sys.argv[2]))
    print(await server.start(), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await server.stop()

asyncio.run(main())
"""

_ROOT = Path(__file__).resolve().parents[2]
HOSTILE = 3000
CAP = 32
HEADER_TIMEOUT_S = 2.0
CONNECT_TIMEOUT_S = 3.0


async def _hostile_peer(port: int, slow_head: bool) -> asyncio.StreamWriter | None:
    """An idle connection, or one sending an unfinished 60 KB request head.

    With the accept backlog full the kernel drops the SYN and the client retries for minutes:
    a connection not made within a few seconds was not taken, as good as refused.
    """
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        if slow_head:
            writer.write(b"GET /metrics HTTP/1.1\r\nX-Pad: " + b"a" * 60_000)
    except (ConnectionError, TimeoutError):
        return None
    return writer


async def test_memory_and_descriptors_stay_flat_under_3000_idle_or_slow_connections() -> None:
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _CHILD,
        str(HEADER_TIMEOUT_S),
        str(CAP),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(_ROOT)},
    )
    assert child.stdin is not None and child.stdout is not None
    peers: list[asyncio.StreamWriter] = []
    try:
        port = int(await asyncio.wait_for(child.stdout.readline(), 30))
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(trust_env=False, timeout=10) as client:
            assert (await client.get(f"{base}/metrics")).status_code == 200
        fds_before, rss_before = open_fds(child.pid), rss_mib(child.pid)
        fds_peak, rss_peak = fds_before, rss_before
        for start in range(0, HOSTILE, 100):
            batch = await asyncio.gather(
                *(_hostile_peer(port, i % 2 == 1) for i in range(start, start + 100))
            )
            peers.extend(w for w in batch if w is not None)
            fds_peak = max(fds_peak, open_fds(child.pid))
            rss_peak = max(rss_peak, rss_mib(child.pid))
        # Served slots plus at most one accept burst (the backlog, sized to the cap).
        assert fds_peak <= fds_before + 2 * CAP + 8, (fds_before, fds_peak)
        assert rss_peak <= rss_before + 16, (rss_before, rss_peak)
        # The slots held by peers that never finish a head are freed by the header timeout.
        async with asyncio.timeout(HEADER_TIMEOUT_S + 20):
            while True:  # another process's descriptors: polled, nothing to wait on
                if open_fds(child.pid) <= fds_before + 2:
                    break
                await asyncio.sleep(0.05)
        async with httpx.AsyncClient(trust_env=False, timeout=10) as client:
            assert (await client.get(f"{base}/healthz")).status_code == 200
    finally:
        for writer in peers:
            writer.transport.abort()
        child.stdin.close()
        await asyncio.wait_for(child.wait(), 30)


async def test_a_request_head_longer_than_8_kib_is_refused(metrics: Metrics) -> None:
    refused = metrics.ops_connections_refused
    server = OpsServer(metrics.registry, Health(), "127.0.0.1", 0, refused=refused)
    port = await server.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nX-Pad: " + b"a" * 9000 + b"\r\n\r\n")
        assert await reader.read() == b""  # closed unanswered
        writer.close()
    finally:
        await server.stop()
    assert sample(metrics, "connector_ops_connections_refused_total", reason="too_large") == 1
