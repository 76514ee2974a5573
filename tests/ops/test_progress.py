"""The status line reads the registry /metrics serves: rates per venue over the interval."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry

from connector.ops import progress
from connector.ops.metrics import Metrics


def _metrics() -> Metrics:
    return Metrics(CollectorRegistry())


def test_rates_are_per_venue_over_the_interval_and_counts_are_totals() -> None:
    m = _metrics()
    m.frames_received.labels("tplus", "depth", "1").inc(100)
    before = progress.read_totals(m.registry, at=10.0)
    m.frames_received.labels("tplus", "depth", "1").inc(30)
    m.frames_received.labels("tplus", "trades", "1").inc(20)
    m.frames_received.labels("tastytrade", "account", "a").inc(5)
    m.records_delivered.labels("tplus.depth").inc(42)
    m.dlq_records.labels("tplus.depth", "validate", "missing_field").inc(2)
    m.reconnects.labels("tplus", "depth", "1", "closed").inc()
    now = progress.read_totals(m.registry, at=15.0)
    status = progress.status(started=0.0, before=before, now=now, ready=False)
    assert status.events_per_s == {"tplus": 10.0, "tastytrade": 1.0}
    assert status.line() == (
        "[00:00:15] NOT READY | events tastytrade=1.0/s tplus=10.0/s | delivered=42 dlq=2"
        " reconnects=1 queued=0"
    )
    assert status.fields()["dlq"] == 2 and status.fields()["ready"] is False


async def test_report_emits_a_status_every_interval() -> None:
    m = _metrics()
    seen: list[progress.Status] = []
    two = asyncio.Event()

    def emit(status: progress.Status) -> None:
        seen.append(status)
        m.frames_received.labels("tplus", "depth", "1").inc(10)
        if len(seen) == 2:
            two.set()

    task = asyncio.create_task(progress.report(m.registry, lambda: True, 0.05, emit))
    try:
        await asyncio.wait_for(two.wait(), timeout=10)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert seen[0].events_per_s == {}
    assert seen[1].events_per_s["tplus"] > 0 and seen[1].ready
    assert seen[1].elapsed_s > seen[0].elapsed_s
