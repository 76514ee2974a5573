"""The reconnecting WebSocket session against a real server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.http11 import Request, Response

from connector.ops.health import Health
from connector.ops.metrics import Metrics
from connector.settings import WebSocketSettings
from connector.sources.ws_session import (
    CloseReason,
    Endpoint,
    FrameRejection,
    HeaderFactory,
    HeadersUnavailable,
    RejectionHandler,
    RejectionReporter,
    UnreadHandler,
    WebSocketSession,
)
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
        self.connections: list[ServerConnection] = []

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
        elif behaviour == "stalled-client":
            self.connections.append(ws)
            await self.release.wait()
        elif behaviour == "too-big":
            await ws.send("x" * 5000)  # beyond four times the 1 KiB limit
            await self.release.wait()
        elif behaviour == "bad-utf8":
            await ws.send(b'{"a": "\xff\xfe"}', text=True)  # a text frame that is not UTF-8
            await self.release.wait()
        elif behaviour == "protocol-error":
            ws.transport.write(b"\x83\x00")  # a final frame with a reserved opcode
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
    url: str,
    handler: Recorder,
    metrics: Metrics,
    health: Health,
    on_unread: UnreadHandler | None = None,
    on_frame_rejected: RejectionReporter | None = None,
    **ws: object,
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
        on_unread=on_unread,
        on_frame_rejected=on_frame_rejected,
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


class _Slowest(random.Random):
    """Always draws the backoff ceiling, so a backoff's length is known."""

    def random(self) -> float:
        return 1.0


def _auth_session(
    url: str,
    handler: Recorder,
    metrics: Metrics,
    health: Health,
    headers: HeaderFactory,
    on_rejected: RejectionHandler | None,
    backoff_s: float = 0.05,
) -> WebSocketSession:
    settings = WebSocketSettings.model_validate(
        {"silence_timeout_s": 5, "backoff": {"initial_s": backoff_s, "max_s": backoff_s}}
    )
    return WebSocketSession(
        Endpoint("v", "s", "sub", url),
        handler,
        settings,
        metrics,
        health,
        rng=_Slowest(),
        headers=headers,
        on_rejected=on_rejected,
    )


async def test_a_rejected_handshake_is_retried_once_at_once_with_fresh_headers(
    venue: tuple[Venue, str], metrics: Metrics, health: Health
) -> None:
    server, url = venue
    server.reject_status = 401
    tokens = iter(["stale", "fresh"])
    statuses: list[int] = []

    async def headers() -> dict[str, str]:
        return {"Authorization": f"Bearer {next(tokens)}"}

    async def on_rejected(status: int) -> bool:
        statuses.append(status)
        return True

    rec = Recorder()
    loop = asyncio.get_running_loop()
    session = _auth_session(url, rec, metrics, health, headers, on_rejected, backoff_s=5.0)
    task = asyncio.create_task(session.run())
    assert await rec.next() == ("close", CloseReason.HANDSHAKE_REJECTED)
    rejected_at = loop.time()
    assert await rec.next() == ("open", None)
    assert loop.time() - rejected_at < 2.0, "the retry waited for the 5 s backoff"
    assert statuses == [401]
    assert [h["Authorization"] for h in server.headers] == ["Bearer stale", "Bearer fresh"]
    labels = {"venue": "v", "stream": "s", "subscription": "sub"}
    assert sample(metrics, "connector_reconnects_total", reason="handshake_rejected", **labels) == 1
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_a_second_rejection_backs_off_and_a_declined_retry_too(
    venue: tuple[Venue, str], metrics: Metrics, health: Health
) -> None:
    server, url = venue
    calls: list[int] = []

    async def headers() -> dict[str, str]:
        return {}

    async def on_rejected(status: int) -> bool:
        calls.append(status)
        return status == 401

    loop = asyncio.get_running_loop()
    rec = Recorder()
    server.reject_status = 401
    session = _auth_session(url, rec, metrics, health, headers, on_rejected, backoff_s=0.5)
    task = asyncio.create_task(session.run())
    assert await rec.next() == ("close", CloseReason.HANDSHAKE_REJECTED)
    server.reject_status = 401  # the immediate retry is rejected too: now the session backs off
    assert await rec.next() == ("close", CloseReason.HANDSHAKE_REJECTED)
    second = loop.time()
    assert await rec.next() == ("open", None)
    assert loop.time() - second >= 0.45
    assert calls == [401]
    assert len(server.headers) == 3
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)

    rec2 = Recorder()
    server.reject_status = 500
    session = _auth_session(url, rec2, metrics, health, headers, on_rejected, backoff_s=0.5)
    task = asyncio.create_task(session.run())
    assert await rec2.next() == ("close", CloseReason.HANDSHAKE_REJECTED)
    declined = loop.time()
    assert await rec2.next() == ("open", None)
    assert loop.time() - declined >= 0.45
    assert calls == [401, 500]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_missing_credentials_back_off_as_auth_failed(
    venue: tuple[Venue, str], metrics: Metrics, health: Health
) -> None:
    server, url = venue
    attempts = 0

    async def headers() -> dict[str, str]:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise HeadersUnavailable("sign-in failed (unreachable)")
        return {"X": "1"}

    rec = Recorder()
    task = asyncio.create_task(_auth_session(url, rec, metrics, health, headers, None).run())
    assert await rec.next() == ("close", CloseReason.AUTH_FAILED)
    assert await rec.next() == ("close", CloseReason.AUTH_FAILED)
    assert await rec.next() == ("open", None)
    assert len(server.headers) == 1  # no connection was attempted without credentials
    labels = {"venue": "v", "stream": "s", "subscription": "sub"}
    assert sample(metrics, "connector_reconnects_total", reason="auth_failed", **labels) == 2
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


class _Echo:
    """A server that answers every text frame with ``echo:<frame>`` and never speaks first."""

    async def handler(self, ws: ServerConnection) -> None:
        async for message in ws:
            await ws.send(f"echo:{message!s}")


def _link_session(
    url: str, handler: Recorder, metrics: Metrics, health: Health, **kwargs: object
) -> WebSocketSession:
    settings = WebSocketSettings.model_validate(
        {"silence_timeout_s": 5, "backoff": {"initial_s": 0.05, "max_s": 1.0}}
    )
    return WebSocketSession(
        Endpoint("v", "s", "sub", url),
        handler,
        settings,
        metrics,
        health,
        rng=_Slowest(),
        **kwargs,  # type: ignore[arg-type]
    )


async def test_a_handler_sends_frames_and_replaces_its_socket_with_its_own_reason(
    metrics: Metrics, health: Health
) -> None:
    echo = _Echo()
    async with serve(echo.handler, "127.0.0.1", 0) as server:
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        rec = Recorder()
        session = _link_session(url, rec, metrics, health)
        assert await session.send("too early") is False
        task = asyncio.create_task(session.run())
        assert await rec.next() == ("open", None)
        assert await session.send("ping-1") is True
        assert await rec.next() == ("frame", "echo:ping-1")
        # The session now waits for a frame (silence timeout 5 s); replace acts at once.
        loop = asyncio.get_running_loop()
        asked = loop.time()
        session.replace("heartbeat_timeout")
        session.replace("ignored_second_reason")
        assert await rec.next() == ("close", "heartbeat_timeout")
        assert loop.time() - asked < 1.0
        assert await rec.next() == ("open", None)
        assert await session.send("ping-2") is True
        assert await rec.next() == ("frame", "echo:ping-2")
        labels = {"venue": "v", "stream": "s", "subscription": "sub"}
        assert (
            sample(metrics, "connector_reconnects_total", reason="heartbeat_timeout", **labels) == 1
        )
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


class _Marking(Recorder):
    """Vouches for its connection on every frame, as an acknowledged login would."""

    session: WebSocketSession | None = None

    async def on_frame(self, data: str | bytes, received_ns: int) -> None:
        assert self.session is not None
        self.session.mark_healthy()
        await super().on_frame(data, received_ns)


async def _reopen_delays(rec: Recorder, count: int) -> list[float]:
    loop = asyncio.get_running_loop()
    delays = []
    for _ in range(count):
        event = await rec.next()
        while event[0] != "close":
            event = await rec.next()
        closed = loop.time()
        assert await rec.next() == ("open", None)
        delays.append(loop.time() - closed)
    return delays


async def test_only_the_handler_vouches_when_the_first_frame_may_be_a_refusal(
    venue: tuple[Venue, str], metrics: Metrics, health: Health
) -> None:
    server, url = venue
    server.behaviours = ["hello-then-1000"] * 8
    rec = Recorder()
    task = asyncio.create_task(
        _link_session(url, rec, metrics, health, healthy_after_first_frame=False).run()
    )
    assert await rec.next() == ("open", None)
    growing = await _reopen_delays(rec, 3)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert growing[2] >= 0.19, "frames alone do not reset the backoff (0.05, 0.1, 0.2)"

    server.behaviours = ["hello-then-1000"] * 8
    marking = _Marking()
    session = _link_session(url, marking, metrics, health, healthy_after_first_frame=False)
    marking.session = session
    task = asyncio.create_task(session.run())
    assert await marking.next() == ("open", None)
    flat = await _reopen_delays(marking, 3)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert max(flat) < 0.15, "mark_healthy resets the backoff"


async def test_a_frame_that_arrives_during_a_stalled_loop_is_read_not_dropped(
    venue: tuple[Venue, str], metrics: Metrics, health: Health
) -> None:
    """The watchdog fires late after a stall; the frame that arrived meanwhile must survive."""
    server, url = venue
    server.behaviours = ["stalled-client"]
    rec = Recorder()
    task = asyncio.create_task(_session(url, rec, metrics, health, silence_timeout_s=0.3).run())
    assert await rec.next() == ("open", None)
    (conn,) = server.connections
    # Write the frame straight to the socket, then stall the whole loop past the
    # silence timeout: on resuming, the frame's I/O and the overdue watchdog timer
    # become due in the same loop iteration.
    broadcast([conn], "late")
    time.sleep(0.5)  # noqa: ASYNC251 - the fault itself: a loop starved past the timeout
    assert await rec.next() == ("frame", "late")
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


class _Burst:
    """Sends ``count`` frames at once on every connection, then holds it open."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.release = asyncio.Event()

    async def handler(self, ws: ServerConnection) -> None:
        for n in range(self.count):
            await ws.send(f"f{n}")
        await self.release.wait()


class _Gated(Recorder):
    """Holds its first frame until ``gate`` is set, as a reader waiting on a full spool."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.first = asyncio.Event()

    async def on_frame(self, data: str | bytes, received_ns: int) -> None:
        self.first.set()
        await self.gate.wait()
        await super().on_frame(data, received_ns)


@asynccontextmanager
async def _held_burst(
    metrics: Metrics, health: Health, on_unread: UnreadHandler | None = None
) -> AsyncIterator[tuple[WebSocketSession, _Gated, asyncio.Task[None]]]:
    """A session reading a burst of 20 frames, its reader held on the first one."""
    burst = _Burst(20)
    async with serve(burst.handler, "127.0.0.1", 0) as server:
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        rec = _Gated()
        session = _session(url, rec, metrics, health, on_unread=on_unread)
        task = asyncio.create_task(session.run())
        assert await rec.next() == ("open", None)
        await asyncio.wait_for(rec.first.wait(), timeout=10)
        try:
            yield session, rec, task
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            burst.release.set()


async def test_a_replaced_socket_is_read_to_its_end_before_it_closes(
    metrics: Metrics, health: Health
) -> None:
    async with _held_burst(metrics, health) as (session, rec, _):
        session.replace("heartbeat_timeout")  # while the reader waits, frames queued behind
        rec.gate.set()
        frames = []
        while (event := await rec.next())[0] == "frame":
            frames.append(event[1])
        assert frames == [f"f{n}" for n in range(20)]
        assert event == ("close", "heartbeat_timeout")


async def test_a_session_stopped_with_frames_unread_leaves_a_marker_with_their_count(
    metrics: Metrics, health: Health
) -> None:
    marked: list[int] = []

    async def on_unread(count: int) -> None:
        marked.append(count)

    async with _held_burst(metrics, health, on_unread) as (session, _, task):
        # The rest of the burst reaches the socket while the reader is held.
        await _until(lambda: session._ws.unread_frames == 19)  # type: ignore[union-attr]
        task.cancel()  # as at shutdown: the reader stops with frames received and unread
        await asyncio.gather(task, return_exceptions=True)
        assert marked == [19]


async def _until(condition: Callable[[], bool]) -> None:
    """Poll state nothing signals (websockets' queue of received frames), for up to 10 s."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in 10 s")


@pytest.mark.parametrize(("compression", "offered"), [(None, False), ("deflate", True)])
async def test_permessage_deflate_is_offered_only_when_the_venue_setting_asks(
    venue: tuple[Venue, str],
    metrics: Metrics,
    health: Health,
    compression: str | None,
    offered: bool,
) -> None:
    server, url = venue
    rec = Recorder()
    ws: dict[str, Any] = {} if compression is None else {"compression": compression}
    task = asyncio.create_task(_session(url, rec, metrics, health, **ws).run())
    assert await rec.next() == ("open", None)
    assert await rec.next() == ("frame", "hello")
    extensions = server.headers[0].get("Sec-WebSocket-Extensions", "")
    assert ("permessage-deflate" in extensions) is offered
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.parametrize(
    ("behaviour", "expected", "reason"),
    [
        # Uncompressed (the default): the frame header tells the refused frame's size.
        ("too-big", FrameRejection(1009, "too_big", 5000, 4096), CloseReason.MESSAGE_TOO_BIG),
        ("bad-utf8", FrameRejection(1007, "not_utf8", 11), CloseReason.CLOSED_ERROR),
        ("protocol-error", FrameRejection(1002, "protocol_error"), CloseReason.CLOSED_ERROR),
    ],
)
async def test_a_frame_the_websocket_layer_refuses_is_reported_before_the_close(
    venue: tuple[Venue, str],
    metrics: Metrics,
    health: Health,
    behaviour: str,
    expected: FrameRejection,
    reason: str,
) -> None:
    server, url = venue
    server.behaviours = [behaviour, "hold"]
    rec = Recorder()

    async def rejected(rejection: FrameRejection, received_ns: int) -> None:
        assert received_ns > 0
        await rec.events.put(("rejected", rejection))

    session = _session(
        url, rec, metrics, health, on_frame_rejected=rejected, max_message_bytes=1024
    )
    task = asyncio.create_task(session.run())
    assert await rec.next() == ("open", None)
    assert await rec.next() == ("rejected", expected)
    assert await rec.next() == ("close", reason)
    assert await rec.next() == ("open", None)
    assert await rec.next() == ("frame", "hello")  # the stream goes on
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


class _PingCounter(logging.Handler):
    """Counts the pings a websockets server logs receiving (its DEBUG frame log)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.pings = 0
        self.changed = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("< PING"):
            self.pings += 1
            self.changed.set()


async def test_a_silent_socket_whose_pings_are_answered_is_never_replaced_without_a_setting(
    metrics: Metrics, health: Health
) -> None:
    """An illiquid book: nothing for 40 ping intervals, pongs on time, no reconnect."""
    counter = _PingCounter()
    server_log = logging.getLogger("tests.ws_session.silent_venue")
    server_log.setLevel(logging.DEBUG)
    server_log.addHandler(counter)
    server_log.propagate = False
    connections = 0
    release = asyncio.Event()

    async def silent(ws: ServerConnection) -> None:
        nonlocal connections
        connections += 1
        await release.wait()

    try:
        async with serve(silent, "127.0.0.1", 0, logger=server_log) as server:
            port = server.sockets[0].getsockname()[1]
            rec = Recorder()
            session = _session(
                f"ws://127.0.0.1:{port}/s",
                rec,
                metrics,
                health,
                silence_timeout_s=None,
                ping_interval_s=0.02,
                ping_timeout_s=2.0,
            )
            task = asyncio.create_task(session.run())
            assert await rec.next() == ("open", None)
            async with asyncio.timeout(20):
                while counter.pings < 40:
                    counter.changed.clear()
                    await counter.changed.wait()
            labels = {"venue": "v", "stream": "s", "subscription": "sub"}
            assert connections == 1 and rec.events.empty()
            assert sample(metrics, "connector_connection_up", **labels) == 1
            assert (
                metrics.registry.get_sample_value("connector_seconds_since_last_message", labels)
                is not None
            )
            release.set()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    finally:
        server_log.removeHandler(counter)
