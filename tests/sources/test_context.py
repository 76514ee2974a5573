"""Frames above the size limit are dead-lettered, not parsed and not dropped."""

from __future__ import annotations

from connector.ops.metrics import Metrics
from connector.pipeline import Publisher
from connector.sources.context import OversizeGuard
from tests.fakes import RecordingSink, handle_frame


class Inner:
    def __init__(self) -> None:
        self.frames: list[str | bytes] = []
        self.extra = "visible through the guard"

    async def on_open(self) -> None:
        return None

    async def on_frame(self, data: str | bytes, received_ns: int) -> None:
        self.frames.append(data)

    async def on_close(self, reason: str) -> None:
        return None

    async def close(self) -> None:
        return None


async def test_oversized_frames_go_to_the_dlq_whole(metrics: Metrics) -> None:
    sink = RecordingSink()
    inner = Inner()
    guard = OversizeGuard(inner, "tplus.depth", 10, Publisher(sink, metrics), key="1")
    await handle_frame(guard, "small", 1)
    await handle_frame(guard, "é" * 6, 2)  # 12 bytes in UTF-8, though 6 characters
    await handle_frame(guard, b"x" * 11, 3)
    assert inner.frames == ["small"]
    assert [(d.reason, d.stage, d.raw, d.key) for d in sink.dead] == [
        ("too_large", "decode", "é".encode() * 6, "1"),
        ("too_large", "decode", b"x" * 11, "1"),
    ]
    assert guard.extra == "visible through the guard"
