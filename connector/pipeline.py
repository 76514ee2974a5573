"""The step shared by every source: records to the sink, bad frames to the DLQ.

Sources parse; this turns their results into sink calls and metrics, so each
source does not re-implement the accounting.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from connector.ops.log_throttle import Throttle
from connector.ops.metrics import LatencyTally, Metrics, preset
from connector.records import DeadLetter, Record, Stage, members
from connector.venues.errors import FrameError, Reason

log = logging.getLogger(__name__)

Waiting = Coroutine[Any, Any, None]
"""What a caller awaits when a record could not be handed over at once."""


async def settle(waiting: Awaitable[object] | None) -> None:
    """Await what a non-blocking step handed back, if it handed anything back."""
    if waiting is not None:
        await waiting


LossListener = Callable[[str, str], None]
"""Told the key of a record that will never reach its topic, and why (it was dead-lettered)."""


def preset_dead_letters(metrics: Metrics, streams: Sequence[str]) -> None:
    """A DLQ series per stream, stage and reason, at 0 until its first letter."""
    stages, reasons = members(Stage), members(Reason)
    preset(
        metrics.dlq_records,
        *((stream, stage, why) for stream in streams for stage in stages for why in reasons),
    )


class RecordSink(Protocol):
    """Where records and dead letters go (the Kafka sink, or a fake in unit tests)."""

    def on_lost(self, stream: str, listener: LossListener) -> None: ...
    def submit(self, record: Record) -> Waiting | None: ...
    async def send(self, record: Record) -> None: ...
    async def dead_letter(self, letter: DeadLetter) -> None: ...
    def congested(self) -> bool: ...


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class DeadLetterLimiter:
    """A token bucket per stream: at most ``burst`` dead letters at once, ``rate_per_s`` after.

    A venue sending nothing but bad frames (a compressed flood above all: a
    few KB on the wire inflate to MB-sized dead letters) would otherwise turn
    its whole bandwidth into DLQ writes. Letters over the limit are counted
    (``connector_dlq_suppressed``) and dropped, and logged every ten seconds at most.
    """

    def __init__(
        self,
        metrics: Metrics,
        rate_per_s: float = 10.0,
        burst: int = 50,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._metrics = metrics
        self._rate = rate_per_s
        self._burst = float(burst)
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        # One line per stream per ten seconds, carrying how many were dropped since.
        self._log_throttle = Throttle(window_s=10.0, burst=1, clock=clock)

    def allow(self, stream: str) -> bool:
        """Whether one more dead letter of ``stream`` may be produced now."""
        now = self._clock()
        bucket = self._buckets.get(stream)
        if bucket is None:
            bucket = self._buckets[stream] = _Bucket(self._burst, now)
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.at) * self._rate)
        bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return True
        self._metrics.dlq_suppressed.labels(stream).inc()
        before = self._log_throttle.admit(stream)
        if before is not None:
            log.warning(
                "dead letters over the rate limit dropped",
                extra={"stream": stream, "dropped": before + 1, "rate_per_s": self._rate},
            )
        return False


class Publisher:
    """Publishes a source's records in order and dead-letters what it rejects.

    ``submit`` and ``submit_all`` are the per-frame path: they hand records to
    the sink without making a coroutine unless one must wait, and then return
    it; the caller awaits it before publishing anything that must follow.
    """

    def __init__(
        self, sink: RecordSink, metrics: Metrics, limiter: DeadLetterLimiter | None = None
    ) -> None:
        self._sink = sink
        self._metrics = metrics
        self._limiter = limiter if limiter is not None else DeadLetterLimiter(metrics)
        self._lag: dict[str, LatencyTally] = {}

    def congested(self) -> bool:
        """True when streams that may shed should do so rather than wait."""
        return self._sink.congested()

    def on_lost(self, stream: str, listener: LossListener) -> None:
        """Have ``listener`` told (on the loop) each record of ``stream`` lost for good."""
        self._sink.on_lost(stream, listener)

    def observing(self, observe: Callable[[Record], None]) -> Publisher:
        """A publisher to the same sink that shows ``observe`` every record before it goes."""
        return ObservingPublisher(self._sink, self._metrics, observe)

    def submit(self, record: Record) -> Waiting | None:
        """Hand over one record; None when done, else what to await."""
        if record.event_ns is not None:
            self._observe_lag(record, record.event_ns)
        return self._sink.submit(record)

    def submit_all(self, records: Sequence[Record]) -> Waiting | None:
        """Hand over records in order; None when all are done, else what to await."""
        for index, record in enumerate(records):
            waiting = self.submit(record)
            if waiting is not None:
                return self._finish(waiting, records[index + 1 :])
        return None

    async def publish(self, records: Sequence[Record]) -> None:
        await settle(self.submit_all(records))

    async def _finish(self, waiting: Waiting, rest: Sequence[Record]) -> None:
        await waiting
        for record in rest:
            await settle(self.submit(record))

    def _observe_lag(self, record: Record, event_ns: int) -> None:
        lag = self._lag.get(record.stream)
        if lag is None:
            lag = self._lag[record.stream] = self._metrics.event_lag.labels(record.stream)
        lag.observe(max(0.0, (record.received_ns - event_ns) / 1e9))

    async def reject(
        self,
        stream: str,
        error: FrameError,
        raw: bytes | str,
        received_ns: int,
        key: str | None = None,
        extra_headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        """Dead-letter a frame the source rejected, unless its stream is over the rate limit."""
        if not self._limiter.allow(stream):
            return
        data = raw.encode("utf-8") if isinstance(raw, str) else bytes(raw)
        await self._sink.dead_letter(
            DeadLetter(
                stream,
                error.stage,
                error.reason,
                error.detail,
                data,
                received_ns,
                key=key,
                extra_headers=extra_headers,
            )
        )


class ObservingPublisher(Publisher):
    """A Publisher whose records are seen (and may be given an ``on_ack``) on the way out."""

    def __init__(
        self, sink: RecordSink, metrics: Metrics, observe: Callable[[Record], None]
    ) -> None:
        super().__init__(sink, metrics)
        self._observe = observe

    def submit(self, record: Record) -> Waiting | None:
        self._observe(record)
        return Publisher.submit(self, record)  # not super(): it costs a lookup per record
