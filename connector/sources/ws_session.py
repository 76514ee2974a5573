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

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidStatus,
    PayloadTooBig,
    ProtocolError,
)

from connector.ops.health import Health
from connector.ops.metrics import Metrics, preset
from connector.ops.wire_log import wire_logger
from connector.records import members
from connector.settings import WebSocketSettings
from connector.sources.backoff import Backoff
from connector.sources.ws_connection import DirectConnection

log = logging.getLogger(__name__)

_TIMER_SLACK_S = 0.001
"""A timer may fire this much early; the watchdog still counts it as on time."""
_wire_log = wire_logger("websockets.client")
"""websockets' own logger, with credential headers redacted from its DEBUG handshake lines."""


class FrameHandler(Protocol):
    """What a source does with a connection's events."""

    async def on_open(self) -> None: ...
    def on_frame(self, data: str | bytes, received_ns: int) -> Awaitable[None] | None:
        """Handle one frame: None when done, else what the reader awaits first.

        An ``async def`` fits; handlers on the hot path return None for the
        common frame, so reading one costs no coroutine.
        """

    async def on_close(self, reason: str) -> None: ...
    async def close(self) -> None: ...


HeaderFactory = Callable[[], Awaitable[Mapping[str, str]]]

UnreadHandler = Callable[[int], Awaitable[None]]
"""Told how many received frames a closing connection leaves unread (a loss marker)."""

#: How long a loss marker may take at a connection's end (shutdown must not hang on it).
_MARKER_TIMEOUT_S = 2.0

RejectionHandler = Callable[[int], Awaitable[bool]]
"""Told the HTTP status of a rejected handshake; True asks for one immediate retry.

This is where a source re-authenticates after a 401/403: the retry calls
the header factory again. A retry that is rejected too falls back to the
usual backoff.
"""


@dataclass(frozen=True, slots=True)
class FrameRejection:
    """A frame the WebSocket layer refused and closed the socket over; never its content."""

    code: int
    """The close code the connector sent: 1009 too big, 1007 invalid UTF-8, 1002 protocol error."""
    cause: str
    """``too_big``, ``not_utf8`` or ``protocol_error``."""
    size: int | None = None
    """The frame's size in bytes, where the layer knew it."""
    limit: int | None = None
    """The size limit it exceeded (``max_size``)."""


RejectionReporter = Callable[[FrameRejection, int], Awaitable[None]]
"""Told of a refused frame and when it was refused (epoch ns), before ``on_close``."""


def frame_rejection(exc: ConnectionClosed) -> FrameRejection | None:
    """What the layer refused, when a close was caused by a frame rather than by the peer."""
    cause = exc.__cause__
    code = int(exc.sent.code) if exc.sent is not None else 0
    if isinstance(cause, PayloadTooBig):
        size = cause.size if cause.size is None else cause.size + (cause.current_size or 0)
        return FrameRejection(code, "too_big", size, cause.max_size)
    if isinstance(cause, UnicodeDecodeError):
        return FrameRejection(code, "not_utf8", len(cause.object))
    if isinstance(cause, ProtocolError):
        return FrameRejection(code, "protocol_error")
    return None


class HeadersUnavailable(Exception):
    """Raised by a header factory that cannot build headers now (e.g. sign-in failed).

    The session counts the attempt as ``auth_failed`` and backs off; the
    message must not carry secrets.
    """


class CloseReason:
    """The closed set of reasons a connection ends (a metric label)."""

    CLOSED_NORMAL = "closed_normal"
    CLOSED_ERROR = "closed_error"
    SILENT = "silent"
    CONNECT_FAILED = "connect_failed"
    HANDSHAKE_REJECTED = "handshake_rejected"
    MESSAGE_TOO_BIG = "message_too_big"
    AUTH_FAILED = "auth_failed"
    TASK_FAILED = "task_failed"
    """A task serving the connection died; replacing the socket restarts it."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One venue connection: where to connect and how to label it."""

    venue: str
    stream: str
    """The logical stream's name (``tplus.depth``), the ``stream`` label of every metric."""
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
        on_rejected: RejectionHandler | None = None,
        healthy_after_first_frame: bool = True,
        on_unread: UnreadHandler | None = None,
        on_frame_rejected: RejectionReporter | None = None,
    ) -> None:
        self._endpoint = endpoint
        self._on_unread = on_unread
        self._on_frame_rejected = on_frame_rejected
        self._rejection: FrameRejection | None = None
        self._reset_on_first_frame = healthy_after_first_frame
        self._ws: ClientConnection | None = None
        self._replace_reason: str | None = None
        # The silence watchdog: one timer per connection, re-armed lazily,
        # instead of a timeout armed and cancelled around every frame.
        self._reading = False
        self._recv_since = 0.0
        self._silent = False
        self._watchdog: asyncio.TimerHandle | None = None
        self._closer: asyncio.Future[None] | None = None
        self._handler = handler
        self._settings = settings
        self._metrics = metrics
        self._health = health
        self._headers = headers
        self._on_rejected = on_rejected
        self._rejected_status = 0
        self._clock_ns = clock_ns
        b = settings.backoff
        self._backoff = Backoff(b.initial_s, b.max_s, b.multiplier, rng)
        labels = (endpoint.venue, endpoint.stream, endpoint.subscription)
        self._frames = metrics.frames_received.labels(*labels)
        self._bytes = metrics.frame_bytes.labels(*labels)
        self._last_frame = metrics.last_message.slot(*labels)
        self._up = metrics.connection_state.labels(*labels)
        self._up.set(0)
        preset(metrics.reconnects, *((*labels, r) for r in members(CloseReason)))
        self._health_name = f"{endpoint.stream}.{endpoint.subscription}"
        self._health.set(self._health_name, False, "not connected yet")

    @property
    def labels(self) -> tuple[str, str, str]:
        ep = self._endpoint
        return ep.venue, ep.stream, ep.subscription

    async def run(self) -> None:
        """Connect, read, reconnect; returns only when cancelled."""
        try:
            await self._run()
        finally:
            self._ws = None
            self._up.set(0)
            self._health.set(self._health_name, False, "not running")
            await self._handler.close()

    async def send(self, text: str) -> bool:
        """Send a text frame on the open socket; False when none is open (it is being replaced)."""
        ws = self._ws
        if ws is None:
            return False
        try:
            await ws.send(text)
        except ConnectionClosed:
            return False
        return True

    def replace(self, reason: str) -> None:
        """Close the open socket and reconnect, reporting ``reason`` (a closed-set metric label).

        For what only the handler can see, such as an application heartbeat
        left unanswered; it takes effect at once, even while waiting for a frame.
        """
        if self._ws is None or self._replace_reason is not None:
            return
        self._replace_reason = reason
        if self._reading:
            self._interrupt(self._ws)

    def mark_healthy(self) -> None:
        """The handler vouches for this connection: the next reconnect starts from a short delay.

        For sessions built with ``healthy_after_first_frame=False``, whose
        first frame may be a refusal (an authentication error) rather than data.
        """
        self._backoff.reset()

    def _replaced(self) -> str:
        reason = self._replace_reason or CloseReason.CLOSED_NORMAL
        ep = self._endpoint
        log.warning(
            "venue connection replaced",
            extra={
                "venue": ep.venue,
                "stream": ep.stream,
                "subscription": ep.subscription,
                "reason": reason,
            },
        )
        return reason

    async def _run(self) -> None:
        ep = self._endpoint
        retried = False
        while True:
            reason = await self._connect_once()
            self._ws = None
            self._up.set(0)
            self._health.set(self._health_name, False, reason)
            rejection, self._rejection = self._rejection, None
            if rejection is not None and self._on_frame_rejected is not None:
                await self._on_frame_rejected(rejection, self._clock_ns())
            await self._handler.on_close(reason)
            self._metrics.reconnects.labels(ep.venue, ep.stream, ep.subscription, reason).inc()
            if (
                reason == CloseReason.HANDSHAKE_REJECTED
                and not retried
                and self._on_rejected is not None
                and await self._on_rejected(self._rejected_status)
            ):
                retried = True
                log.info(
                    "venue rejected the handshake; retrying once at once",
                    extra={"venue": ep.venue, "stream": ep.stream, "subscription": ep.subscription},
                )
                continue
            retried = False
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

    def _interrupt(self, ws: ClientConnection) -> None:
        """End a pending ``recv`` by closing the socket (it raises ConnectionClosed)."""
        if self._closer is None:
            self._closer = asyncio.ensure_future(ws.close())
            self._closer.add_done_callback(_retrieve)

    def _watch(self, ws: ClientConnection, silence_s: float) -> None:
        """The watchdog timer: close a socket waiting longer than ``silence_s`` for a frame.

        Frames that already reached the socket are still read after the close
        starts (the reader drains them before it sees the close).
        """
        if ws is not self._ws:
            return  # a timer of a connection already replaced
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._reading and now >= self._recv_since + silence_s - _TIMER_SLACK_S:
            self._silent = True
            self._interrupt(ws)
            return
        since = self._recv_since if self._reading else now
        self._watchdog = loop.call_at(since + silence_s, self._watch, ws, silence_s)

    async def _connect_once(self) -> str:
        ep = self._endpoint
        s = self._settings
        try:
            headers = dict(await self._headers()) if self._headers is not None else {}
        except HeadersUnavailable as exc:
            log.warning(
                "no credentials for the venue connection",
                extra={"venue": ep.venue, "stream": ep.stream, "error": str(exc)},
            )
            return CloseReason.AUTH_FAILED
        try:
            async with connect(
                ep.url,
                additional_headers=headers,
                logger=_wire_log,
                origin=None if ep.origin is None else ep.origin,  # type: ignore[arg-type]
                open_timeout=s.open_timeout_s,
                ping_interval=s.ping_interval_s,
                ping_timeout=s.ping_timeout_s,
                # Frames between the limit and 4x are dead-lettered by the source;
                # beyond that the socket closes (1009) to bound memory.
                max_size=s.max_message_bytes * 4,
                # Frames read ahead of the handler: with max_size, this bounds a socket's
                # memory to (max_queue + 1) frames of at most max_size bytes.
                max_queue=s.max_queue,
                compression=None if s.compression == "none" else s.compression,
                close_timeout=2,
                # websockets' connection with a leaner hand-over of parsed frames to recv.
                create_connection=DirectConnection,
            ) as ws:
                self._ws = ws
                self._replace_reason = None
                self._silent = False
                self._closer = None
                self._up.set(1)
                self._health.set(self._health_name, True, "")
                log.info(
                    "venue connection open",
                    extra={"venue": ep.venue, "stream": ep.stream, "subscription": ep.subscription},
                )
                await self._handler.on_open()
                loop = asyncio.get_running_loop()
                silence_s = s.silence_timeout_s
                if silence_s is not None:
                    # Without it, WebSocket pings alone judge the connection alive.
                    self._watchdog = loop.call_at(
                        loop.time() + silence_s, self._watch, ws, silence_s
                    )
                first = True
                frames, frame_bytes, clock_ns = self._frames, self._bytes, self._clock_ns
                last_frame, on_frame = self._last_frame, self._handler.on_frame
                assert isinstance(ws, DirectConnection)
                take = ws.take
                try:
                    while True:
                        if self._replace_reason is not None:
                            # Close, and read on: frames already received come before
                            # the close, and dropping them would lose them silently.
                            self._interrupt(ws)
                        data = take()  # a message already read from the socket, if any
                        if data is None:
                            self._recv_since = loop.time()
                            self._reading = True
                            try:
                                data = await ws.recv()
                            finally:
                                self._reading = False
                        received_ns = clock_ns()
                        last_frame.at = loop.time()
                        frames.value += 1
                        frame_bytes.value += len(data)
                        if first and self._reset_on_first_frame:
                            # Only a connection that delivers data counts as healthy;
                            # one that opens and drops at once keeps backing off.
                            self._backoff.reset()
                            first = False
                        waiting = on_frame(data, received_ns)
                        if waiting is not None:
                            await waiting
                finally:
                    if self._watchdog is not None:
                        self._watchdog.cancel()
                        self._watchdog = None
                    await self._report_unread(ws)
        except ConnectionClosed as exc:
            self._rejection = frame_rejection(exc)
            if self._rejection is not None:
                log.warning(
                    "the WebSocket layer refused a venue frame; reconnecting",
                    extra={
                        "venue": ep.venue,
                        "stream": ep.stream,
                        "subscription": ep.subscription,
                        "cause": self._rejection.cause,
                        "close_code": self._rejection.code,
                        "frame_bytes": self._rejection.size,
                    },
                )
            if self._replace_reason is not None:
                return self._replaced()
            if self._silent:
                log.warning(
                    "venue connection silent; replacing it",
                    extra={"venue": ep.venue, "stream": ep.stream, "subscription": ep.subscription},
                )
                return CloseReason.SILENT
            code = exc.rcvd.code if exc.rcvd is not None else None
            if code == 1009 or (exc.sent is not None and exc.sent.code == 1009):
                return CloseReason.MESSAGE_TOO_BIG
            if code in (1000, 1001):
                return CloseReason.CLOSED_NORMAL
            return CloseReason.CLOSED_ERROR
        except InvalidStatus as exc:
            self._rejected_status = exc.response.status_code
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

    async def _report_unread(self, ws: DirectConnection) -> None:
        """A connection ending with received frames unread (at shutdown): leave a marker."""
        unread = ws.unread_frames
        if not unread or self._on_unread is None:
            return
        ep = self._endpoint
        log.error(
            "venue connection dropped with frames unread",
            extra={"venue": ep.venue, "stream": ep.stream, "count": unread},
        )
        try:
            await asyncio.wait_for(self._on_unread(unread), _MARKER_TIMEOUT_S)
        except TimeoutError:
            log.error("the loss marker could not be written in time", extra={"count": unread})


def _retrieve(closing: asyncio.Future[None]) -> None:
    """Consume the outcome of a close started by the watchdog (the reader reports the close)."""
    if not closing.cancelled() and closing.exception() is not None:
        log.debug("closing a venue socket failed", exc_info=closing.exception())
