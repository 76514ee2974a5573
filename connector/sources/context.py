"""What every source is built with, so adding a venue never touches the wiring.

``app.py`` builds one SourceContext; each venue module's ``build`` function
turns its settings section into Services (anything with an ``async run()``
that works until cancelled), usually WebSocketSessions.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import httpx

from connector.ops.health import Health
from connector.ops.metrics import Metrics
from connector.pipeline import Publisher
from connector.records import Stage
from connector.settings import WebSocketSettings
from connector.sources.ws_session import (
    Endpoint,
    FrameHandler,
    HeaderFactory,
    RejectionHandler,
    UnreadHandler,
    WebSocketSession,
)
from connector.venues.errors import FrameError, Reason


class Service(Protocol):
    """A long-running part of a source; returns only by raising or being cancelled."""

    async def run(self) -> None: ...


class OversizeGuard:
    """Dead-letters frames above the configured size instead of handing them to a parser.

    The socket itself accepts up to four times the limit (a hard memory
    bound; beyond it the connection closes with 1009), so a frame that is
    merely too large is kept in the DLQ rather than dropped with the socket.
    """

    def __init__(
        self, inner: FrameHandler, stream: str, limit: int, publisher: Publisher, key: str
    ) -> None:
        self._inner = inner
        self._stream = stream
        self._limit = limit
        self._publisher = publisher
        self._key = key

    async def on_open(self) -> None:
        await self._inner.on_open()

    def on_frame(self, data: str | bytes, received_ns: int) -> Awaitable[None] | None:
        # A str of n characters is at most 4n bytes in UTF-8: only frames that
        # could exceed the limit pay for measuring their encoded size.
        size = len(data)
        if isinstance(data, str) and 4 * size > self._limit:
            size = len(data.encode("utf-8"))
        if size <= self._limit:
            return self._inner.on_frame(data, received_ns)
        error = FrameError(
            Reason.TOO_LARGE, f"frame of {size} bytes exceeds {self._limit}", Stage.DECODE
        )
        return self._publisher.reject(self._stream, error, data, received_ns, key=self._key)

    async def on_close(self, reason: str) -> None:
        await self._inner.on_close(reason)

    async def close(self) -> None:
        await self._inner.close()

    def __getattr__(self, name: str) -> object:
        # Handlers may expose more than the FrameHandler protocol (e.g. a hook
        # the session looks up); the guard is transparent to those.
        return getattr(self._inner, name)


@dataclass(frozen=True)
class SourceContext:
    publisher: Publisher
    metrics: Metrics
    health: Health
    http: httpx.AsyncClient
    rng: random.Random
    clock_ns: Callable[[], int]
    environ: Mapping[str, str] = field(default_factory=dict)
    """Where SecretRefs naming environment variables are resolved."""
    restarted: bool = False
    """A previous process ran with this spool: books announce a GAP before their first SNAPSHOT."""

    def child_rng(self) -> random.Random:
        """An independent generator, so jitter differs between connections."""
        return random.Random(self.rng.random())

    def session(
        self,
        endpoint: Endpoint,
        handler: FrameHandler,
        settings: WebSocketSettings,
        headers: HeaderFactory | None = None,
        on_rejected: RejectionHandler | None = None,
    ) -> WebSocketSession:
        guarded = OversizeGuard(
            handler,
            endpoint.stream,  # the logical stream name, as every DLQ label and header
            settings.max_message_bytes,
            self.publisher,
            key=endpoint.subscription,
        )
        return WebSocketSession(
            endpoint,
            guarded,
            settings,
            self.metrics,
            self.health,
            rng=self.child_rng(),
            headers=headers,
            clock_ns=self.clock_ns,
            on_rejected=on_rejected,
            on_unread=self.unread_marker(endpoint.stream, endpoint.subscription),
        )

    def unread_marker(self, stream: str, key: str) -> UnreadHandler:
        """A dead letter (``connection_dropped_unread``) for frames a closing socket left unread."""

        async def mark(count: int) -> None:
            error = FrameError(
                Reason.CONNECTION_DROPPED_UNREAD,
                f"the connection closed with {count} received frames unread",
                Stage.RECEIVE,
            )
            await self.publisher.reject(
                stream,
                error,
                b"",
                self.clock_ns(),
                key=key,
                extra_headers=(("unread_frames", str(count)),),
            )

        return mark
