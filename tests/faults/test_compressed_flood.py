"""A venue flooding deflated frames that inflate to MB-sized dead letters: limited, memory flat.

Each frame is 3.9 MB of text that deflates to a few KB: above
``max_message_bytes`` (1 MiB) and below four times it, so every one becomes
a dead letter. The venue's websocket section turns permessage-deflate on
(it is off by default). With brokers up, dead letters are held to the
per-stream rate; with brokers down, the dead letters awaiting
acknowledgement are held to their byte budget, so resident memory stays
flat instead of filling the whole producer queue (some 560 MiB before).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from connector.app import Connector
from connector.embedded.kafka import MockCluster
from connector.embedded.registry import RegistryServer
from tests.faults.harness import DLQ, TOPICS, Row, settings_for
from tests.process_usage import rss_mib
from tests.running import metric_value, running_connector

FRAME = "x" * 3_900_000
RATE_PER_S = 5.0
BURST = 10
PENDING_BYTES = 4 * 1024 * 1024
STREAM = "tplus.trades"


class Flood:
    """Sends FRAME over and over to every connection, about 50 a second."""

    def __init__(self) -> None:
        self.sent = 0
        self.first_at: float | None = None

    async def handler(self, ws: ServerConnection) -> None:
        if self.first_at is None:
            self.first_at = time.monotonic()
        try:
            while True:
                await ws.send(FRAME)
                self.sent += 1
                await asyncio.sleep(0.02)  # the venue's pace, not synchronisation
        except ConnectionClosed:
            return


async def _until(predicate: Callable[[], bool], timeout_s: float) -> None:
    async with asyncio.timeout(timeout_s):
        while True:  # counters of another component: polled, nothing to wait on
            if predicate():
                return
            await asyncio.sleep(0.05)


async def test_a_compressed_flood_is_rate_limited_and_memory_stays_flat(
    fault_report: list[Row],
) -> None:
    flood = Flood()
    with MockCluster(brokers=1) as cluster, RegistryServer() as registry:
        for topic in [*TOPICS, DLQ]:
            cluster.create_topic(topic, partitions=1)
        async with serve(flood.handler, "127.0.0.1", 0, compression="deflate") as server:
            port = server.sockets[0].getsockname()[1]
            overrides: dict[str, dict[str, Any]] = {
                "tplus.market_data": {
                    "depth": False,
                    "klines": False,
                    "websocket": {"compression": "deflate", "silence_timeout_s": 30.0},
                },
                "kafka": {
                    "dlq_rate_per_s": RATE_PER_S,
                    "dlq_burst": BURST,
                    "dlq_max_pending_bytes": PENDING_BYTES,
                },
            }
            settings = settings_for(
                cluster.bootstrap_servers,
                registry.start(),
                f"http://127.0.0.1:{port}",
                **overrides,
            )
            connector = Connector(settings)

            def dead() -> float:
                return metric_value(
                    connector,
                    "connector_dlq_records_total",
                    stream=STREAM,
                    stage="decode",
                    reason="too_large",
                )

            def dropped() -> float:
                return metric_value(connector, "connector_dlq_suppressed_total", stream=STREAM)

            async with running_connector(connector, expect_flushed=False):
                await _until(lambda: flood.sent >= 150, 30)
                assert flood.first_at is not None
                elapsed = time.monotonic() - flood.first_at
                assert BURST <= dead() <= BURST + RATE_PER_S * elapsed + 1, (dead(), elapsed)
                assert dropped() >= flood.sent - dead() - 5  # a few still in the socket

                # Brokers down: admitted dead letters wait, the rest are dropped.
                cluster.set_broker_down(-1)
                before = rss_mib()
                samples = []
                start = flood.sent
                while flood.sent < start + 400:
                    await asyncio.sleep(0.25)  # one memory sample per quarter second
                    samples.append(rss_mib())
                cluster.set_broker_up(-1)
                half = len(samples) // 2
                assert max(samples) - before < 2 * PENDING_BYTES / 2**20 + 24, (before, samples)
                assert max(samples[half:]) - max(samples[:half]) < 8, samples
                await _until(
                    lambda: (
                        metric_value(connector, "connector_records_delivered_total", topic=DLQ)
                        >= dead()
                    ),
                    30,
                )
    fault_report.append(
        Row(
            "compressed flood (3.9 MB → ~4 KB frames)",
            sent=flood.sent,
            dlq=int(dead()),
            notes=[
                f"{int(dropped())} dead letters dropped over the limits",
                f"RSS {before:.0f} → max {max(samples):.0f} MiB with brokers down",
            ],
        )
    )
