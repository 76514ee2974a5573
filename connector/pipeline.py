"""The step shared by every source: records to the sink, bad frames to the DLQ.

Sources parse; this turns their results into sink calls and metrics, so each
source does not re-implement the accounting.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, Protocol

from connector.ops.metrics import LatencyTally, Metrics, preset
from connector.records import DeadLetter, Record, Stage, members
from connector.venues.errors import FrameError, Reason

Waiting = Coroutine[Any, Any, None]
"""What a caller awaits when a record could not be handed over at once."""


async def settle(waiting: Awaitable[object] | None) -> None:
    """Await what a non-blocking step handed back, if it handed anything back."""
    if waiting is not None:
        await waiting


def preset_dead_letters(metrics: Metrics, streams: Sequence[str]) -> None:
    """A DLQ series per stream, stage and reason, at 0 until its first letter."""
    stages, reasons = members(Stage), members(Reason)
    preset(
        metrics.dlq_records,
        *((stream, stage, why) for stream in streams for stage in stages for why in reasons),
    )


class RecordSink(Protocol):
    """Where records and dead letters go (the Kafka sink, or a fake in unit tests)."""

    def submit(self, record: Record) -> Waiting | None: ...
    async def send(self, record: Record) -> None: ...
    async def dead_letter(self, letter: DeadLetter) -> None: ...
    def congested(self) -> bool: ...


class Publisher:
    """Publishes a source's records in order and dead-letters what it rejects.

    ``submit`` and ``submit_all`` are the per-frame path: they hand records to
    the sink without making a coroutine unless one must wait, and then return
    it; the caller awaits it before publishing anything that must follow.
    """

    def __init__(self, sink: RecordSink, metrics: Metrics) -> None:
        self._sink = sink
        self._metrics = metrics
        self._lag: dict[str, LatencyTally] = {}

    def congested(self) -> bool:
        """True when streams that may shed should do so rather than wait."""
        return self._sink.congested()

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
