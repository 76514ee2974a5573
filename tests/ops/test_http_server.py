"""The operations port answers /metrics, /healthz and /readyz over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from connector.ops.health import Health
from connector.ops.http_server import OpsServer
from connector.ops.metrics import Metrics


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
