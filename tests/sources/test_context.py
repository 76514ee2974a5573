"""Sessions run their handler behind the size limit and one containment per stream."""

from __future__ import annotations

import random

import httpx
from prometheus_client import CollectorRegistry

from connector.ops.health import Health
from connector.ops.metrics import Metrics
from connector.pipeline import Publisher
from connector.settings import WebSocketSettings
from connector.sources.context import SourceContext
from connector.sources.ws_session import Endpoint
from tests.fakes import RecordingSink, handle_frame


class Inner:
    def __init__(self) -> None:
        self.frames: list[str | bytes] = []
        self.extra = "visible through the boundary"

    async def on_open(self) -> None:
        return None

    async def on_frame(self, data: str | bytes, received_ns: int) -> None:
        self.frames.append(data)

    async def on_close(self, reason: str) -> None:
        return None

    async def close(self) -> None:
        return None


def _context(http: httpx.AsyncClient, sink: RecordingSink, metrics: Metrics) -> SourceContext:
    return SourceContext(
        Publisher(sink, metrics), metrics, Health(), http, random.Random(1), lambda: 1
    )


async def test_oversized_frames_go_to_the_dlq_whole_and_the_book_hears_of_it() -> None:
    metrics = Metrics(CollectorRegistry())
    sink = RecordingSink()
    lost: list[tuple[str, str]] = []
    async with httpx.AsyncClient() as http:
        ctx = _context(http, sink, metrics)
        inner = Inner()
        boundary = ctx.boundary(
            Endpoint("tplus", "tplus.depth", "1", "ws://127.0.0.1:9/"),
            inner,
            WebSocketSettings(max_message_bytes=10),
            on_lost=lambda key, reason: lost.append((key, reason)),
        )
        await handle_frame(boundary, "small", 1)
        await handle_frame(boundary, "é" * 6, 2)  # 12 bytes in UTF-8, though 6 characters
        await handle_frame(boundary, b"x" * 11, 3)
        assert ctx.containment("tplus", "depth", "1") is ctx.containment("tplus", "depth", "1")
    assert inner.frames == ["small"]
    assert [(d.reason, d.stage, d.raw, d.key, d.stream) for d in sink.dead] == [
        ("too_large", "decode", "é".encode() * 6, "1", "tplus.depth"),
        ("too_large", "decode", b"x" * 11, "1", "tplus.depth"),
    ]
    assert lost == [("1", "dead_lettered")] * 2
    assert boundary.extra == "visible through the boundary"


async def test_a_record_lost_after_its_frame_is_routed_to_the_book_that_keeps_its_key() -> None:
    metrics = Metrics(CollectorRegistry())
    lost: list[tuple[str, str]] = []
    async with httpx.AsyncClient() as http:
        ctx = SourceContext(
            Publisher(RecordingSink(), metrics),
            metrics,
            Health(),
            http,
            random.Random(1),
            lambda: 1,
        )
        settings = WebSocketSettings()
        ctx.boundary(
            Endpoint("tplus", "tplus.depth", "7", "ws://127.0.0.1:9/"),
            Inner(),
            settings,
            on_lost=lambda key, reason: lost.append((key, reason)),
        )
        ctx.boundary(
            Endpoint("tplus", "tplus.trades", "all", "ws://127.0.0.1:9/"), Inner(), settings
        )
        ctx.record_lost("tplus.depth", "7", "dead_lettered")
        ctx.record_lost("tplus.depth", "8", "dead_lettered")  # no such book
        ctx.record_lost("tplus.trades", "7", "dead_lettered")  # no state to repair
    assert lost == [("7", "dead_lettered")]
