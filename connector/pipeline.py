"""The step shared by every source: records to the sink, bad frames to the DLQ.

Sources parse; this turns their results into sink calls and metrics, so each
source does not re-implement the accounting.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from prometheus_client import Histogram

from connector.metrics import Metrics
from connector.records import DeadLetter, Record
from connector.venues.errors import FrameError


class RecordSink(Protocol):
    """Where records and dead letters go (the Kafka sink, or a fake in unit tests)."""

    async def send(self, record: Record) -> None: ...
    async def dead_letter(self, letter: DeadLetter) -> None: ...
    def congested(self) -> bool: ...


class Publisher:
    """Publishes a source's records in order and dead-letters what it rejects."""

    def __init__(self, sink: RecordSink, metrics: Metrics) -> None:
        self._sink = sink
        self._metrics = metrics
        self._lag: dict[str, Histogram] = {}

    def congested(self) -> bool:
        """True when streams that may shed should do so rather than wait."""
        return self._sink.congested()

    async def publish(self, records: Iterable[Record]) -> None:
        send = self._sink.send
        for record in records:
            if record.event_ns is not None:
                lag = self._lag.get(record.stream)
                if lag is None:
                    lag = self._lag[record.stream] = self._metrics.event_lag.labels(record.stream)
                lag.observe(max(0.0, (record.received_ns - record.event_ns) / 1e9))
            await send(record)

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
