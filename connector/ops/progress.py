"""A periodic status line: is it ready, how fast is each venue flowing, what went wrong.

A person watching ``connector dev`` or a freshly deployed ``connector run``
wants one short line every few seconds, not a cumulative dump: elapsed time,
readiness, events per second per venue over the last interval, and the counts
that say something needs a look (dead letters, reconnects, records queued).
It reads the same registry /metrics serves, so it can never disagree with it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

_EVENTS = "connector_frames_received"
_DELIVERED = "connector_records_delivered"
_DLQ = "connector_dlq_records"
_RECONNECTS = "connector_reconnects"
_QUEUED = "connector_producer_queue_messages"


@dataclass(frozen=True)
class Totals:
    """Cumulative counts read from the registry at one instant."""

    at: float
    events: dict[str, float] = field(default_factory=dict)  # per venue
    delivered: float = 0.0
    dlq: float = 0.0
    reconnects: float = 0.0
    queued: float = 0.0


def read_totals(registry: CollectorRegistry, at: float) -> Totals:
    events: dict[str, float] = {}
    sums = {_DELIVERED: 0.0, _DLQ: 0.0, _RECONNECTS: 0.0, _QUEUED: 0.0}
    for metric in registry.collect():
        for sample in metric.samples:
            if metric.name == _EVENTS and sample.name.endswith("_total"):
                venue = sample.labels.get("venue", "")
                events[venue] = events.get(venue, 0.0) + sample.value
            elif metric.name in sums and not sample.name.endswith("_created"):
                sums[metric.name] += sample.value
    return Totals(at, events, sums[_DELIVERED], sums[_DLQ], sums[_RECONNECTS], sums[_QUEUED])


@dataclass(frozen=True)
class Status:
    elapsed_s: float
    ready: bool
    events_per_s: dict[str, float]
    delivered: int
    dlq: int
    reconnects: int
    queued: int

    def line(self) -> str:
        minutes, seconds = divmod(int(self.elapsed_s), 60)
        hours, minutes = divmod(minutes, 60)
        rates = " ".join(f"{v}={r:.1f}/s" for v, r in sorted(self.events_per_s.items()))
        return (
            f"[{hours:02d}:{minutes:02d}:{seconds:02d}] {'ready' if self.ready else 'NOT READY'}"
            f" | events {rates or 'none yet'} | delivered={self.delivered} dlq={self.dlq}"
            f" reconnects={self.reconnects} queued={self.queued}"
        )

    def fields(self) -> dict[str, object]:
        """The same, as structured log fields."""
        return {
            "elapsed_s": round(self.elapsed_s, 1),
            "ready": self.ready,
            "events_per_s": {v: round(r, 1) for v, r in sorted(self.events_per_s.items())},
            "delivered": self.delivered,
            "dlq": self.dlq,
            "reconnects": self.reconnects,
            "queued": self.queued,
        }


def status(started: float, before: Totals, now: Totals, ready: bool) -> Status:
    """The status over the interval from ``before`` to ``now``."""
    span = max(now.at - before.at, 1e-9)
    rates = {v: (n - before.events.get(v, 0.0)) / span for v, n in now.events.items()}
    return Status(
        now.at - started,
        ready,
        rates,
        int(now.delivered),
        int(now.dlq),
        int(now.reconnects),
        int(now.queued),
    )


async def report(
    registry: CollectorRegistry,
    ready: Callable[[], bool],
    every_s: float,
    emit: Callable[[Status], None],
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Call ``emit`` with a Status every ``every_s`` seconds until cancelled."""
    started = clock()
    before = read_totals(registry, started)
    while True:
        await asyncio.sleep(every_s)
        now = read_totals(registry, clock())
        emit(status(started, before, now, ready()))
        before = now
