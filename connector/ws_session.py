"""A venue WebSocket that stays connected: backoff, pings and a silence watchdog.

Venue-agnostic: it knows URLs, headers and frames, and hands every frame to a
handler. Reconnecting is its whole job, because neither venue SDK reconnects
by itself.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from connector.backoff import Backoff
from connector.health import Health
from connector.metrics import Metrics
from connector.settings import WebSocketSettings

log = logging.getLogger(__name__)


class FrameHandler(Protocol):
    """What a source does with a connection's events."""

    async def on_open(self) -> None: ...
    async def on_frame(self, data: str | bytes, received_ns: int) -> None: ...
    async def on_close(self, reason: str) -> None: ...
    async def close(self) -> None: ...


HeaderFactory = Callable[[], Awaitable[Mapping[str, str]]]


class CloseReason:
    """The closed set of reasons a connection ends (a metric label)."""

    CLOSED_NORMAL = "closed_normal"
    CLOSED_ERROR = "closed_error"
    SILENT = "silent"
    CONNECT_FAILED = "connect_failed"
    HANDSHAKE_REJECTED = "handshake_rejected"
    MESSAGE_TOO_BIG = "message_too_big"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One venue connection: where to connect and how to label it."""

    venue: str
    stream: str
    subscription: str
    url: str
    origin: str | None = None


class WebSocketSession:
    """Runs one endpoint forever, reconnecting with backoff, until cancelled."""

    def __init__(
        self,
        endpoint: Endpoint,
        handler: FrameHandler,
        settings: WebSocketSettings,
        metrics: Metrics,
        health: Health,
        *,
        rng: random.Random,
        headers: HeaderFactory | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self._endpoint = endpoint
        self._handler = handler
        self._settings = settings
        self._metrics = metrics
        self._health = health
        self._headers = headers
        self._clock_ns = clock_ns
        b = settings.backoff
        self._backoff = Backoff(b.initial_s, b.max_s, b.multiplier, rng)
        labels = (endpoint.venue, endpoint.stream, endpoint.subscription)
        self._frames = metrics.frames_received.labels(*labels)
        self._bytes = metrics.frame_bytes.labels(*labels)
        self._up = metrics.connection_state.labels(*labels)
        self._up.set(0)
        self._health_name = f"{endpoint.venue}.{endpoint.stream}.{endpoint.subscription}"
        self._health.set(self._health_name, False, "not connected yet")

    async def run(self) -> None:
        """Connect, read, reconnect; returns only when cancelled."""
        try:
            await self._run()
        finally:
            self._up.set(0)
            await self._handler.close()

    async def _run(self) -> None:
        ep = self._endpoint
        while True:
            reason = await self._connect_once()
            self._up.set(0)
            self._health.set(self._health_name, False, reason)
            await self._handler.on_close(reason)
            self._metrics.reconnects.labels(ep.venue, ep.stream, ep.subscription, reason).inc()
            delay = self._backoff.next_delay()
            log.info(
                "venue connection ended; reconnecting",
                extra={
                    "venue": ep.venue,
                    "stream": ep.stream,
                    "subscription": ep.subscription,
                    "reason": reason,
                    "delay_s": round(delay, 3),
                },
            )
            await asyncio.sleep(delay)

    async def _connect_once(self) -> str:
        ep = self._endpoint
        s = self._settings
        headers = dict(await self._headers()) if self._headers is not None else {}
        try:
            async with connect(
                ep.url,
                additional_headers=headers,
                origin=None if ep.origin is None else ep.origin,  # type: ignore[arg-type]
                open_timeout=s.open_timeout_s,
                ping_interval=s.ping_interval_s,
                ping_timeout=s.ping_timeout_s,
                max_size=s.max_message_bytes,
                close_timeout=2,
            ) as ws:
                self._up.set(1)
                self._health.set(self._health_name, True, "")
                log.info(
                    "venue connection open",
                    extra={"venue": ep.venue, "stream": ep.stream, "subscription": ep.subscription},
                )
                await self._handler.on_open()
                first = True
                while True:
                    try:
                        async with asyncio.timeout(s.silence_timeout_s):
                            data = await ws.recv()
                    except TimeoutError:
                        log.warning(
                            "venue connection silent; replacing it",
                            extra={
                                "venue": ep.venue,
                                "stream": ep.stream,
                                "subscription": ep.subscription,
                            },
                        )
                        return CloseReason.SILENT
                    received_ns = self._clock_ns()
                    self._frames.inc()
                    self._bytes.inc(len(data))
                    self._metrics.last_message.touch(ep.venue, ep.stream, ep.subscription)
                    if first:
                        # Only a connection that delivers data counts as healthy;
                        # one that opens and drops at once keeps backing off.
                        self._backoff.reset()
                        first = False
                    await self._handler.on_frame(data, received_ns)
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd is not None else None
            if code == 1009 or (exc.sent is not None and exc.sent.code == 1009):
                return CloseReason.MESSAGE_TOO_BIG
            if code in (1000, 1001):
                return CloseReason.CLOSED_NORMAL
            return CloseReason.CLOSED_ERROR
        except InvalidStatus as exc:
            log.warning(
                "venue rejected the WebSocket handshake",
                extra={"venue": ep.venue, "stream": ep.stream, "status": exc.response.status_code},
            )
            return CloseReason.HANDSHAKE_REJECTED
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            log.warning(
                "venue connection failed",
                extra={"venue": ep.venue, "stream": ep.stream, "error": type(exc).__name__},
            )
            return CloseReason.CONNECT_FAILED
