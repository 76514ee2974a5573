"""The reconnecting WebSocket session against a real server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

from connector.health import Health
from connector.metrics import Metrics
from connector.settings import WebSocketSettings
from connector.ws_session import CloseReason, Endpoint, WebSocketSession
from tests.conftest import sample


class Recorder:
    """A FrameHandler that records what the session tells it."""

    def __init__(self) -> None:
        self.events: asyncio.Queue[tuple[str, object]] = asyncio.Queue()

    async def on_open(self) -> None:
        await self.events.put(("open", None))

    async def on_frame(self, data: str | bytes, received_ns: int) -> None:
        assert received_ns > 0
        await self.events.put(("frame", data))

    async def on_close(self, reason: str) -> None:
        await self.events.put(("close", reason))

    async def close(self) -> None:
        await self.events.put(("stopped", None))

    async def next(self) -> tuple[str, object]:
        return await asyncio.wait_for(self.events.get(), timeout=10)


class Venue:
    """A scripted server: each connection runs the next behaviour in the list."""

    def __init__(self) -> None:
        self.behaviours: list[str] = []
        self.reject_status: int | None = None
        self.headers: list[dict[str, str]] = []
        self.release = asyncio.Event()

    async def handler(self, ws: ServerConnection) -> None:
        behaviour = self.behaviours.pop(0) if self.behaviours else "hold"
        if behaviour == "hello-then-1011":
            await ws.send("hello")
            await ws.close(1011, "boom")
        elif behaviour == "hello-then-1000":
            await ws.send("hello")
            await ws.close(1000)
        elif behaviour == "silent":
            await self.release.wait()
        elif behaviour == "too-big":
            await ws.send("x" * 2048)
            await self.release.wait()
        else:
            await ws.send("hello")
            await self.release.wait()

    def process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        self.headers.append(dict(request.headers.raw_items()))
        if self.reject_status is not None:
            status, self.reject_status = self.reject_status, None
            return ws.respond(status, "no\n")
        return None


@pytest.fixture
async def venue() -> AsyncIterator[tuple[Venue, str]]:
    v = Venue()
    async with serve(v.handler, "127.0.0.1", 0, process_request=v.process_request) as server:
        port = server.sockets[0].getsockname()[1]
        yield v, f"ws://127.0.0.1:{port}/stream"
        v.release.set()


def _session(
    url: str, handler: Recorder, metrics: Metrics, health: Health, **ws: object
) -> WebSocketSession:
    settings = WebSocketSettings.model_validate(
        {"silence_timeout_s": 5, "backoff": {"initial_s": 0.01, "max_s": 0.05}, **ws}
    )
    return WebSocketSession(
        Endpoint("v", "s", "sub", url, "http://origin.test"),
        handler,
        settings,
        metrics,
        health,
        rng=random.Random(1),
    )


async def test_reconnects_after_abnormal_and_normal_closes(
    venue: tuple[Venue, str], metrics: Metrics, health: Health
) -> None:
    server, url = venue
    server.behaviours = ["hello-then-1011", "hello-then-1000", "hold"]
    rec = Recorder()
    task = asyncio.create_task(_session(url, rec, metrics, health).run())
    seen = [await rec.next() for _ in range(8)]
    assert seen == [
        ("open", None),
        ("frame", "hello"),
        ("close", CloseReason.CLOSED_ERROR),
        ("open", None),
        ("frame", "hello"),
        ("close", CloseReason.CLOSED_NORMAL),
        ("open", None),
        ("frame", "hello"),
    ]
    labels = {"venue": "v", "stream": "s", "subscription": "sub"}
    assert sample(metrics, "connector_reconnects_total", reason="closed_error", **labels) == 1
    assert sample(metrics, "connector_reconnects_total", reason="closed_normal", **labels) == 1
    assert sample(metrics, "connector_frames_received_total", **labels) == 3
    assert sample(metrics, "connector_connection_up", **labels) == 1
    assert health.ready()
    assert server.headers[0]["Origin"] == "http://origin.test"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sample(metrics, "connector_connection_up", **labels) == 0


async def test_a_silent_socket_is_replaced_within_the_timeout(
    venue: tuple[Venue, str], metrics: Metrics, health: Health
) -> None:
    server, url = venue
    server.behaviours = ["silent", "hold"]
    rec = Recorder()
    loop = asyncio.get_running_loop()
    task = asyncio.create_task(_session(url, rec, metrics, health, silence_timeout_s=0.3).run())
    assert await rec.next() == ("open", None)
    opened = loop.time()
    assert await rec.next() == ("close", CloseReason.SILENT)
    elapsed = loop.time() - opened
    assert 0.3 <= elapsed < 2.0
    assert not health.ready()
    assert await rec.next() == ("open", None)
    assert await rec.next() == ("frame", "hello")
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_rejected_handshake_and_refused_connection_back_off(
    venue: tuple[Venue, str], metrics: Metrics, health: Health
) -> None:
    server, url = venue
    server.reject_status = 403
    rec = Recorder()
    task = asyncio.create_task(_session(url, rec, metrics, health).run())
    assert await rec.next() == ("close", CloseReason.HANDSHAKE_REJECTED)
    assert await rec.next() == ("open", None)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)

    rec2 = Recorder()
    dead = _session("ws://127.0.0.1:9/nothing", rec2, metrics, health)
    task = asyncio.create_task(dead.run())
    assert await rec2.next() == ("close", CloseReason.CONNECT_FAILED)
    assert await rec2.next() == ("close", CloseReason.CONNECT_FAILED)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_an_oversized_frame_is_reported(
    venue: tuple[Venue, str], metrics: Metrics, health: Health
) -> None:
    server, url = venue
    server.behaviours = ["too-big", "hold"]
    rec = Recorder()
    task = asyncio.create_task(_session(url, rec, metrics, health, max_message_bytes=1024).run())
    assert await rec.next() == ("open", None)
    assert await rec.next() == ("close", CloseReason.MESSAGE_TOO_BIG)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
