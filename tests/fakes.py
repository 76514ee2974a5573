"""Unit-test stand-ins for I/O edges (never used by the end-to-end tests)."""

from __future__ import annotations

import asyncio

from connector.pipeline import LossListener, Waiting, settle
from connector.records import DeadLetter, Record
from connector.sources.ws_session import FrameHandler


async def handle_frame(handler: FrameHandler, data: str | bytes, received_ns: int) -> None:
    """Hand one frame to a handler as the session does: await only what it returns."""
    await settle(handler.on_frame(data, received_ns))


class RecordingSink:
    """Keeps what would have been produced, in order."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.dead: list[DeadLetter] = []
        self.changed = asyncio.Event()
        self.is_congested = False
        self.loss_listeners: dict[str, LossListener] = {}

    def on_lost(self, stream: str, listener: LossListener) -> None:
        self.loss_listeners[stream] = listener

    def congested(self) -> bool:
        return self.is_congested

    def submit(self, record: Record) -> Waiting | None:
        self.records.append(record)
        self.changed.set()
        return None

    async def send(self, record: Record) -> None:
        self.submit(record)

    async def dead_letter(self, letter: DeadLetter) -> None:
        self.dead.append(letter)
        self.changed.set()

    async def wait_for(self, count: int, timeout_s: float = 10.0) -> None:
        """Until at least ``count`` records have been sent."""
        async with asyncio.timeout(timeout_s):
            while len(self.records) < count:
                self.changed.clear()
                await self.changed.wait()


class FakeLink:
    """The session side of a handler fed frames directly: what it sent and asked to replace."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.replaced: list[str] = []
        self.replacing = asyncio.Event()

    async def send(self, text: str) -> bool:
        self.sent.append(text)
        return True

    def replace(self, reason: str) -> None:
        self.replaced.append(reason)
        self.replacing.set()

    def mark_healthy(self) -> None:
        return None


class FixedTokens:
    """A token source that always has the same token."""

    async def auth_token(self) -> str:
        return "Bearer fixed"

    def rejected(self) -> None:
        return None


class FlakyService:
    """A source task with a bug: ends ``failures`` times (raising ``error``, or returning
    with ``returns``), then runs until cancelled."""

    def __init__(
        self, stream: str, failures: int, error: Exception, *, returns: bool = False
    ) -> None:
        self.labels = ("tplus", stream, "1")
        self.failures = failures
        self.error = error
        self.returns = returns
        self.runs = 0
        self.running = asyncio.Event()

    async def run(self) -> None:
        self.runs += 1
        if self.runs <= self.failures:
            if self.returns:
                return
            raise self.error
        self.running.set()
        await asyncio.Event().wait()
