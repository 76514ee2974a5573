"""Market data shed at a full spool, under a counted marker at each end of the run.

Public trades and klines have no replay and no GAP record of their own. When
the spool passes its watermark their records are dropped, each one counted in
``connector_events_discarded_total{reason="spool_full"}``, and the DLQ gets a
marker when shedding starts and another, with ``shed_count``, when it ends:
a consumer can see which stretch of the stream is missing and how much.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from connector.ops.metrics import Metrics
from connector.records import DeadLetter, Stage
from connector.venues.errors import Reason

log = logging.getLogger(__name__)

DeadLetterSink = Callable[[DeadLetter], Awaitable[None]]


class Shedding:
    """Per stream: whether it is shedding now and how many records it has shed."""

    def __init__(
        self, dead_letter: DeadLetterSink, metrics: Metrics, clock_ns: Callable[[], int]
    ) -> None:
        self._dead_letter = dead_letter
        self._metrics = metrics
        self._clock_ns = clock_ns
        self._shed: dict[str, int] = {}
        self._markers: set[asyncio.Task[None]] = set()

    def shed(self, stream: str) -> None:
        """Drop one record of ``stream``; the first of a run writes the opening marker."""
        count = self._shed.get(stream)
        if count is None:
            count = 0
            log.warning("spool nearly full; shedding market data", extra={"stream": stream})
            self._mark(stream, "shedding starts: the spool reached its watermark", ())
        self._shed[stream] = count + 1
        venue, _, name = stream.partition(".")
        self._metrics.discarded.labels(venue, name, Reason.SPOOL_FULL).inc()

    def resumed(self, stream: str) -> None:
        """A record of ``stream`` is accepted again: close a run of shedding with its count."""
        count = self._shed.pop(stream, None)
        if count is not None:
            log.warning("market data accepted again", extra={"stream": stream, "count": count})
            self._mark(stream, "shedding ends", (("shed_count", str(count)),))

    def _mark(self, stream: str, detail: str, extra: tuple[tuple[str, str], ...]) -> None:
        letter = DeadLetter(
            stream,
            Stage.DELIVER,
            Reason.SPOOL_FULL,
            detail,
            b"",
            self._clock_ns(),
            key=stream,
            extra_headers=extra,
        )
        task = asyncio.ensure_future(self._dead_letter(letter))
        self._markers.add(task)
        task.add_done_callback(self._markers.discard)
