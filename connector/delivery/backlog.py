"""Streams whose newest records are in the spool only, drained into the producer in order.

While the producer can take records, the sink hands them over at once (and
they are spooled too). When it cannot (its queue is full through a broker
outage, or a previous process left rows in the spool), the stream becomes a
lane: every later record of it is written to the spool only, so memory stays
bounded, and the drain reads the lane back in sequence order. A stream's
records therefore reach the producer in the order they were accepted, and a
stream leaves its lane only once the drain has caught up with it.

Lanes drain in turn, a bounded batch each, so one busy stream cannot starve
another.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

from connector.delivery.spool import Held, Spool, SpooledRecord

#: Rows read from one lane per turn.
TURN_ROWS = 500


class Backlog:
    """The lanes and the task that drains them."""

    def __init__(self, spool: Spool, held: Mapping[str, Held]) -> None:
        self._spool = spool
        self._next: dict[str, int] = {stream: h.first_seq for stream, h in held.items()}
        """Per lane, the first sequence number not yet handed to the producer."""
        self._last: dict[str, int] = {stream: h.last_seq for stream, h in held.items()}
        self._wake = asyncio.Event()
        if self._next:
            self._wake.set()

    def holds(self, stream: str) -> bool:
        """True while ``stream``'s new records must go to the spool only."""
        return stream in self._next

    @property
    def lanes(self) -> int:
        return len(self._next)

    def spooled(self, stream: str, seq: int) -> None:
        """A record of ``stream`` was written to the spool only: it joins (or opens) the lane."""
        if stream not in self._next:
            self._next[stream] = seq
            self._wake.set()
        self._last[stream] = seq

    async def drain(self, produce: Callable[[SpooledRecord], Awaitable[None]]) -> None:
        """Hand every lane's rows to ``produce`` in order, for ever (cancel to stop).

        ``produce`` returns once the producer has taken the record (it waits
        for room itself).
        """
        while True:
            if not self._next:
                self._wake.clear()
                await self._wake.wait()
                continue
            for stream in list(self._next):
                first = self._next[stream]
                rows = await self._spool.read(stream, first, TURN_ROWS)
                for row in rows:
                    await produce(row)
                    self._next[stream] = row.seq + 1
                if not rows or self._next[stream] > self._last[stream]:
                    # Caught up: records accepted from now on go straight to the producer.
                    del self._next[stream]
                    del self._last[stream]
