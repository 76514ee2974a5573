"""What every source is built with, so adding a venue never touches the wiring.

``app.py`` builds one SourceContext; each venue module's ``build`` function
turns its settings section into Services (anything with an ``async run()``
that works until cancelled), usually WebSocketSessions.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Protocol

import httpx

from connector.ops.health import Health
from connector.ops.metrics import Metrics
from connector.pipeline import Publisher
from connector.records import Stage
from connector.settings import WebSocketSettings
from connector.sources.containment import (
    DEAD_LETTERED,
    Containment,
    Destination,
    FrameBoundary,
    LossHandler,
)
from connector.sources.ws_session import (
    Endpoint,
    FrameHandler,
    HeaderFactory,
    RejectionHandler,
    WebSocketSession,
)
from connector.venues.errors import FrameError, Reason


class Service(Protocol):
    """A long-running part of a source; returns only by raising or being cancelled."""

    @property
    def labels(self) -> tuple[str, str, str]:
        """``(venue, stream, subscription)``: how its metrics and restarts are labelled."""
        ...

    async def run(self) -> None: ...


class OversizeGuard:
    """Dead-letters frames above the configured size instead of handing them to a parser.

    The socket itself accepts up to four times the limit (a hard memory
    bound; beyond it the connection closes with 1009), so a frame that is
    merely too large is kept in the DLQ rather than dropped with the socket.
    """

    def __init__(
        self,
        inner: FrameHandler,
        stream: str,
        limit: int,
        publisher: Publisher,
        key: str,
        on_lost: LossHandler | None = None,
    ) -> None:
        self._inner = inner
        self._stream = stream
        self._limit = limit
        self._publisher = publisher
        self._key = key
        self._on_lost = on_lost

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
        if self._on_lost is not None:
            self._on_lost(self._key, DEAD_LETTERED)
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

    def child_rng(self) -> random.Random:
        """An independent generator, so jitter differs between connections."""
        return random.Random(self.rng.random())

    @cached_property
    def _containments(self) -> dict[tuple[str, str, str], Containment]:
        return {}

    def containment(self, venue: str, stream: str, subscription: str) -> Containment:
        """The one Containment of a stream (shared by its frames and its REST answers)."""
        labels = (venue, stream, subscription)
        found = self._containments.get(labels)
        if found is None:
            found = self._containments[labels] = Containment(*labels, self.metrics)
        return found

    def boundary(
        self,
        endpoint: Endpoint,
        handler: FrameHandler,
        settings: WebSocketSettings,
        *,
        dlq_stream: str | None = None,
        on_lost: LossHandler | None = None,
    ) -> FrameBoundary:
        """``handler`` behind the size limit and the containment boundary, as sessions run it."""
        stream = dlq_stream or f"{endpoint.venue}.{endpoint.stream}"
        guarded = OversizeGuard(
            handler,
            stream,
            settings.max_message_bytes,
            self.publisher,
            key=endpoint.subscription,
            on_lost=on_lost,
        )
        return FrameBoundary(
            guarded,
            self.containment(endpoint.venue, endpoint.stream, endpoint.subscription),
            self.publisher,
            Destination(stream, endpoint.subscription),
            on_lost=on_lost,
        )

    def session(
        self,
        endpoint: Endpoint,
        handler: FrameHandler,
        settings: WebSocketSettings,
        headers: HeaderFactory | None = None,
        on_rejected: RejectionHandler | None = None,
        on_lost: LossHandler | None = None,
    ) -> WebSocketSession:
        boundary = self.boundary(endpoint, handler, settings, on_lost=on_lost)
        return WebSocketSession(
            endpoint,
            boundary,
            settings,
            self.metrics,
            self.health,
            rng=self.child_rng(),
            headers=headers,
            clock_ns=self.clock_ns,
            on_rejected=on_rejected,
            on_frame_rejected=boundary.on_frame_rejected,
        )
