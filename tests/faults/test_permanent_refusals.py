"""Records the brokers refuse permanently: dead-lettered in their place, per-key order kept.

The whole embedded stack (depth, trades and klines of two assets) while the
cluster fails a few Produce requests with MSG_SIZE_TOO_LARGE. Each record of
a failed request goes to the DLQ and is never produced again; on every topic
each key's records keep the venue's order, and every book that lost a diff
announces a GAP after it and resyncs from a snapshot.
"""

from __future__ import annotations

import asyncio
from collections import Counter

from confluent_kafka import KafkaError

from tests.faults.harness import (
    ASSETS,
    DLQ,
    TOPICS,
    Row,
    Stack,
    account_book,
    running_stack,
    traffic_after,
    wait_for_trades,
)
from tests.kafka_reader import Consumed, TopicReader

PRODUCE = 0


def _refused(stack: Stack, stream: str) -> int:
    return int(
        stack.metric(
            "connector_dlq_records_total", stream=stream, stage="deliver", reason="delivery_failed"
        )
    )


def _depth_order_problems(records: list[Consumed]) -> list[str]:
    """A DIFF that does not follow the record before it must be under a GAP before the
    next SNAPSHOT; DIFF sequence numbers never go back."""
    problems: list[str] = []
    last: int | None = None
    hole_at: int | None = None
    for r in records:
        kind, seq = r.value["kind"], r.value["sequence_number"]
        if kind == "GAP":
            hole_at = None
        elif kind == "SNAPSHOT":
            if hole_at is not None:
                problems.append(f"a hole after {hole_at} was not announced")
            last, hole_at = seq, None
        else:
            if last is not None and seq <= last:
                problems.append(f"DIFF {seq} after {last}: out of order")
            elif last is not None and seq != last + 1 and hole_at is None:
                hole_at = last
            last = seq
    if hole_at is not None:
        problems.append(f"a hole after {hole_at} was not announced")
    return problems


async def test_permanent_refusals_keep_per_key_order_on_every_topic(
    fault_report: list[Row],
) -> None:
    async with running_stack() as stack:
        reader = TopicReader(stack.cluster.bootstrap_servers, stack.registry_url, [*TOPICS, DLQ])
        try:
            await wait_for_trades(reader, 20)
            for _ in range(3):
                stack.cluster.push_request_errors(PRODUCE, [KafkaError.MSG_SIZE_TOO_LARGE] * 2)
                await traffic_after(stack, reader, more=20)
            sim = stack.sim
            sim.pause()
            trade_ids = [t["trade_id"] for t in sim.emitted.trades]
            final = {a: sim.emitted.depth[a][-1].sequence_number for a in ASSETS}

            def settled(rs: dict[str, list[Consumed]]) -> bool:
                last = {
                    a: max(
                        (r.value["sequence_number"] or -1 for r in rs["tplus.depth"] if r.key == a),
                        default=-1,
                    )
                    for a in ASSETS
                }
                trades = len(rs["tplus.trades"]) + _dead(rs, "tplus.trades")
                return last == final and trades >= len(trade_ids) and stack.connector_pending() == 0

            records = await asyncio.to_thread(reader.poll_until, settled, 60)
        finally:
            reader.close()

    row = Row("kafka: permanent produce refusals")
    refused = {s: _refused(stack, s) for s in ("tplus.depth", "tplus.trades", "tplus.klines")}
    assert sum(refused.values()) > 0, "no record was refused: the fault was not injected"
    by_key: dict[tuple[str, str | None], list[Consumed]] = {}
    for topic in TOPICS:
        for r in sorted(records[topic], key=lambda r: (r.partition, r.offset)):
            by_key.setdefault((topic, r.key), []).append(r)
    problems: list[str] = []
    for (topic, key), rs in by_key.items():
        if topic == "tplus.depth":
            problems += [f"{key}: {p}" for p in _depth_order_problems(rs)]
        elif topic == "tplus.trades":
            ids = [r.value["trade_id"] for r in rs]
            if ids != sorted(ids):
                problems.append(f"trades {key}: out of order")
        else:
            opens = [r.value["open_timestamp_ns"] for r in rs]
            if opens != sorted(opens):
                problems.append(f"klines {key}: out of order")
    # Every trade once: on its topic or, refused, in the DLQ.
    got = Counter(r.value["trade_id"] for r in records["tplus.trades"])
    row.sent = len(trade_ids)
    row.delivered = sum(1 for t in trade_ids if t in got)
    row.dlq = _dead(records, "tplus.trades")
    row.duplicates = sum(n - 1 for n in got.values())
    row.missing = row.sent - row.delivered - row.dlq
    # Every diff published, or refused and covered by the GAP that followed it.
    for asset in ASSETS:
        sent = [d.sequence_number for d in stack.sim.emitted.depth[asset]]
        account_book(row, by_key.get(("tplus.depth", asset), []), sent)
    row.notes.append(f"refused {refused}")
    fault_report.append(row)
    assert not problems, problems
    assert row.missing == 0 and row.duplicates == 0, row


def _dead(records: dict[str, list[Consumed]], stream: str) -> int:
    return sum(
        1
        for r in records[DLQ]
        if r.headers.get("stream") == stream.encode() and r.headers.get("stage") == b"deliver"
    )
