"""All brokers down for 60 s while the venue keeps sending: memory stays bounded, nothing is lost.

The producer queue is set small (3,000 records) so the outage outlasts it
within seconds: depth diffs are then shed and announced with GAP records,
trades and klines wait in the venue's socket (the connector stops reading),
and the process's resident memory stops growing. After the brokers return,
every event the venue sent is found again.

The simulated venue here tolerates a slow reader. A venue that drops it
instead (keep-alive timeout) loses what it had queued for the connector:
public streams have no replay, which the README's delivery contract states;
the abrupt-close scenario covers that path.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.faults.harness import (
    DLQ,
    TOPICS,
    Row,
    running_stack,
    settle_and_account,
    traffic_after,
    wait_for_trades,
)
from tests.kafka_reader import TopicReader

OUTAGE_S = 60
QUEUE = 3000


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


async def test_sixty_seconds_without_brokers(fault_report: list[Row]) -> None:
    overrides = {
        "kafka": {"queue_max_messages": QUEUE},
        # Keep-alive and watchdog longer than the outage: the sockets are
        # deliberately not read while the sink is full.
        "tplus.market_data.websocket": {"ping_interval_s": 300, "silence_timeout_s": 300},
    }
    async with running_stack(venue_pings=False, **overrides) as stack:
        reader = TopicReader(stack.cluster.bootstrap_servers, stack.registry_url, TOPICS)
        dlq_reader = TopicReader(stack.cluster.bootstrap_servers, None, [DLQ])
        try:
            await wait_for_trades(reader, 50)
            before = _rss_mib()
            sent_before = len(stack.sim.emitted.trades)
            stack.cluster.set_broker_down(-1)
            samples: list[float] = []
            for _ in range(OUTAGE_S):
                await asyncio.sleep(1)  # one memory sample per second of outage
                samples.append(_rss_mib())
            pending = stack.connector_pending()
            shed = stack.metric(
                "connector_events_discarded_total",
                venue="tplus",
                stream="tplus.depth",
                reason="backpressure",
            )
            sent_during = len(stack.sim.emitted.trades) - sent_before
            stack.cluster.set_broker_up(-1)
            await traffic_after(stack, reader, more=50)
            row = await settle_and_account(stack, reader, dlq_reader, Row("kafka: 60 s outage"))
        finally:
            reader.close()
            dlq_reader.close()
    first_half = max(samples[: OUTAGE_S // 2])
    second_half = max(samples[OUTAGE_S // 2 :])
    print(
        f"\n60 s outage: RSS before {before:.1f} MiB, peak {max(samples):.1f} MiB, "
        f"peak in first half {first_half:.1f}, in second half {second_half:.1f}; "
        f"records waiting at the end {pending} (queue bound {QUEUE}); "
        f"depth diffs shed {shed:.0f}; trades sent during the outage {sent_during}"
    )
    row.notes.append(f"RSS {before:.0f}->{max(samples):.0f} MiB, {pending} queued")
    fault_report.append(row)
    assert row.missing == 0, "; ".join(row.notes)
    assert row.duplicates == 0
    assert pending <= QUEUE
    assert shed > 0, "depth was not shed although the queue was full"
    assert row.gap_announced > 0
    # Bounded: the second half of the outage adds (almost) nothing.
    assert second_half - first_half < 20, samples
    assert max(samples) - before < 150, samples
