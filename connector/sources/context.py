"""What every source is built with, so adding a venue never touches the wiring.

``app.py`` builds one SourceContext; each venue module's ``build`` function
turns its settings section into Services (anything with an ``async run()``
that works until cancelled), usually WebSocketSessions.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import httpx

from connector.health import Health
from connector.metrics import Metrics
from connector.pipeline import Publisher
from connector.settings import WebSocketSettings
from connector.ws_session import Endpoint, FrameHandler, HeaderFactory, WebSocketSession


class Service(Protocol):
    """A long-running part of a source; returns only by raising or being cancelled."""

    async def run(self) -> None: ...


@dataclass(frozen=True)
class SourceContext:
    publisher: Publisher
    metrics: Metrics
    health: Health
    http: httpx.AsyncClient
    rng: random.Random
    clock_ns: Callable[[], int]

    def child_rng(self) -> random.Random:
        """An independent generator, so jitter differs between connections."""
        return random.Random(self.rng.random())

    def session(
        self,
        endpoint: Endpoint,
        handler: FrameHandler,
        settings: WebSocketSettings,
        headers: HeaderFactory | None = None,
    ) -> WebSocketSession:
        return WebSocketSession(
            endpoint,
            handler,
            settings,
            self.metrics,
            self.health,
            rng=self.child_rng(),
            headers=headers,
            clock_ns=self.clock_ns,
        )
