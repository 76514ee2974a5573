"""What every source is built with, so adding a venue never touches the wiring.

``app.py`` builds one SourceContext; each venue module's ``build`` function
turns its settings section into Services (anything with an ``async run()``
that works until cancelled), usually WebSocketSessions.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
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
    UnreadHandler,
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

    @cached_property
    def _loss_handlers(self) -> dict[tuple[str, str], LossHandler]:
        return {}

    def record_lost(self, stream: str, key: str, reason: str) -> None:
        """A record of ``stream`` with ``key`` will never reach its topic (e.g. the brokers
        refused it for good): tell the stream that keeps state on that key, if one does.

        For the sink's delivery reports: a depth book (``tplus.depth``, keyed by
        asset) publishes a GAP with ``reason`` and resyncs; streams without
        state across records have nothing to announce and are not told.
        """
        handler = self._loss_handlers.get((stream, key))
        if handler is not None:
            handler(key, reason)

    def boundary(
        self,
        endpoint: Endpoint,
        handler: FrameHandler,
        settings: WebSocketSettings,
        *,
        on_lost: LossHandler | None = None,
    ) -> FrameBoundary:
        """``handler`` behind the size limit and the containment boundary, as sessions run it.

        Its dead letters name the endpoint's stream (the logical stream, or a
        multiplexed socket's own name) and are keyed by its subscription.
        """
        stream = endpoint.stream
        if on_lost is not None:
            self._loss_handlers[(stream, endpoint.subscription)] = on_lost
        return FrameBoundary(
            handler,
            self.containment(endpoint.venue, endpoint.stream, endpoint.subscription),
            self.publisher,
            Destination(stream, endpoint.subscription, settings.max_message_bytes),
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
            on_unread=self.unread_marker(endpoint.stream, endpoint.subscription),
            on_frame_rejected=boundary.on_frame_rejected,
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
