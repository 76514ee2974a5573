"""Broker, registry and venue faults: every event sent is delivered, dead-lettered or announced.

Each scenario runs the whole embedded stack, injects one fault while the
simulator keeps sending, lets it recover, and accounts for every event the
simulator wrote to a socket. Duplicates are reported; a scenario allows
them only where the embedded cluster's own limits cause them, and says so.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from confluent_kafka import KafkaError

from connector.simulators.tplus_market import StreamKind
from tests.faults.harness import (
    ASSETS,
    DLQ,
    TOPICS,
    Row,
    Stack,
    all_connected,
    running_stack,
    settle_and_account,
    traffic_after,
    wait_for_trades,
)
from tests.kafka_reader import TopicReader

PRODUCE = 0


async def brokers_down_then_up(stack: Stack, reader: TopicReader) -> None:
    stack.cluster.set_broker_down(-1)
    sent = len(stack.sim.emitted.trades)
    # Keep the venue sending through the outage: at least 100 more trades.
    await stack.sim.wait_emitted_trades(sent + 100)
    assert stack.connector.health.snapshot()["kafka"].ok is False
    stack.cluster.set_broker_up(-1)


async def one_broker_down(stack: Stack, reader: TopicReader) -> None:
    stack.cluster.set_broker_down(2)
    await stack.sim.wait_emitted_trades(len(stack.sim.emitted.trades) + 100)
    stack.cluster.set_broker_up(2)


async def retriable_produce_errors(stack: Stack, reader: TopicReader) -> None:
    errors = [KafkaError.NOT_ENOUGH_REPLICAS, KafkaError.REQUEST_TIMED_OUT] * 10
    stack.cluster.push_request_errors(PRODUCE, errors)


async def fatal_producer_error(stack: Stack, reader: TopicReader) -> None:
    stack.cluster.push_request_errors(PRODUCE, [KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER])
    await traffic_after(stack, reader)
    assert stack.metric_sum("connector_producer_rebuilds_total") == 1


async def registry_stopped(stack: Stack, reader: TopicReader) -> None:
    # The test's own consumer caches each writer schema on first sight; let it
    # see every topic first, as a long-running consumer would have.
    await asyncio.to_thread(reader.poll_until, lambda rs: all(rs[t] for t in TOPICS), 60)
    stack.registry.stop()
    await traffic_after(stack, reader, more=100)  # records flow on cached schema ids
    stack.registry.start()


async def venue_abrupt_close(stack: Stack, reader: TopicReader) -> None:
    await stack.sim.disconnect_all(1011)
    await all_connected(stack.sim)


async def venue_garbage_frames(stack: Stack, reader: TopicReader) -> None:
    for kind in ("depth", "trades", "klines"):
        stack.sim.send_garbage(kind, "{not json")
        stack.sim.send_garbage(kind, b"\xff\xfe binary")
    stack.sim.send_garbage("trades", '{"asset_id": "1"}')


async def venue_oversized_frame(stack: Stack, reader: TopicReader) -> None:
    stack.sim.send_garbage("trades", "x" * (1024 * 1024 + 1))


HOSTILE_FIELDS: dict[StreamKind, list[str]] = {
    # Each once crashed a parser (a non-ASCII digit that str.isdigit() accepts, a type that
    # cannot be hashed, nesting deeper than a recursive writer survives); each is a bad field.
    "trades": [
        json.dumps(
            {
                "asset_id": "\u00b2",
                "trade_id": 1,
                "price": "1",
                "quantity": "1",
                "timestamp_ns": 1,
                "buyer_is_maker": True,
            }
        ),
        '{"type": ["ping"], "asset_id": "1"}',
        '{"asset_id": "1", "trade_id": ' + "9" * 30 + "}",
    ],
    "depth": ['{"bids": [["\u00b2", "1"]], "asks": [], "sequence_number": 5}'],
    "klines": ["[" * 900 + "]" * 900],
}


async def venue_hostile_fields(stack: Stack, reader: TopicReader) -> None:
    for kind, payloads in HOSTILE_FIELDS.items():
        for payload in payloads:
            stack.sim.send_garbage(kind, payload)
    await traffic_after(stack, reader)
    # A depth frame lost to the DLQ leaves its book under a GAP, then a fresh snapshot.
    await asyncio.to_thread(
        reader.poll_until,
        lambda rs: any(r.value["gap_reason"] == "dead_lettered" for r in rs["tplus.depth"]),
        60,
    )


async def venue_frame_beyond_the_socket_limit(stack: Stack, reader: TopicReader) -> None:
    # Four times max_message_bytes and more: the WebSocket layer closes the socket (1009).
    stack.sim.send_garbage("depth", "x" * (4 * 1024 * 1024 + 1))
    await _rejected_then_reconnected(stack, "message_too_big")


async def venue_text_frame_not_utf8(stack: Stack, reader: TopicReader) -> None:
    # Invalid UTF-8 in a text frame: the WebSocket layer fails the socket (1007).
    stack.sim.send_garbage("depth", b'{"bids": "\xff\xfe"}', as_text=True)
    await _rejected_then_reconnected(stack, "closed_error")


async def _rejected_then_reconnected(stack: Stack, reason: str) -> None:
    """Depth only: its GAP and snapshot cover what the closed socket lost, trades would not."""

    def rejected() -> float:
        return stack.metric(
            "connector_dlq_records_total",
            stream="tplus.depth",
            stage="decode",
            reason="frame_rejected",
        )

    async with asyncio.timeout(30):
        while rejected() < len(ASSETS):
            # Each trade the venue sends is a step of the stack's progress; check again after it.
            await stack.sim.wait_emitted_trades(len(stack.sim.emitted.trades) + 1)
    await all_connected(stack.sim)
    for asset in ASSETS:
        closes = stack.metric(
            "connector_reconnects_total",
            venue="tplus",
            stream="tplus.depth",
            subscription=asset,
            reason=reason,
        )
        assert closes == 1


async def venue_silent_socket(stack: Stack, reader: TopicReader) -> None:
    stack.sim.silence("trades")
    stack.sim.silence("depth")
    await all_connected(stack.sim)  # the watchdog replaced the silent sockets
    assert (
        stack.metric(
            "connector_reconnects_total",
            venue="tplus",
            stream="tplus.trades",
            subscription="all",
            reason="silent",
        )
        == 1
    )


async def venue_rejects_handshakes(stack: Stack, reader: TopicReader) -> None:
    stack.sim.reject_handshakes(6, 503)
    await stack.sim.disconnect_all(1011)
    await all_connected(stack.sim)
    rejected = stack.metric_sum("connector_reconnects_total")
    assert rejected >= 5 + 6  # every socket dropped once, then six refusals


SCENARIOS: list[tuple[str, Callable[[Stack, TopicReader], Awaitable[None]], int]] = [
    ("kafka: all brokers down, then up", brokers_down_then_up, 0),
    ("kafka: one broker down (leader loss)", one_broker_down, 0),
    ("kafka: retriable produce errors", retriable_produce_errors, 0),
    ("kafka: fatal producer error", fatal_producer_error, 0),
    ("registry: stopped mid-stream", registry_stopped, 0),
    ("venue: abrupt close (1011)", venue_abrupt_close, 0),
    ("venue: garbage frames", venue_garbage_frames, 0),
    ("venue: oversized frame", venue_oversized_frame, 0),
    ("venue: hostile field values", venue_hostile_fields, 0),
    ("venue: frame beyond 4x max size (1009)", venue_frame_beyond_the_socket_limit, 0),
    ("venue: text frame not UTF-8 (1007)", venue_text_frame_not_utf8, 0),
    ("venue: silent sockets", venue_silent_socket, 0),
    ("venue: handshakes refused", venue_rejects_handshakes, 0),
]

# Where the embedded cluster can duplicate: it does not de-duplicate retried
# batches for non-transactional producers, and it accepts the batch queued
# behind one it rejected for a sequence error (a real broker rejects both).
MOCK_MAY_DUPLICATE = {"kafka: retriable produce errors", "kafka: fatal producer error"}

# Where the embedded cluster can lose: a produce request it fails with an
# injected error does not stop it from appending the request pipelined
# behind it, and the retried batch is then answered as a duplicate, i.e.
# acknowledged but never stored (a real broker answers the pipelined request
# OUT_OF_ORDER_SEQUENCE_NUMBER and keeps both). One request in flight keeps
# the scenario about the connector's handling of retriable errors.
MOCK_STACK_OVERRIDES: dict[str, dict[str, Any]] = {
    "kafka: retriable produce errors": {"kafka": {"max_in_flight": 1}},
}


@pytest.mark.parametrize(("name", "inject", "extra_dlq"), SCENARIOS, ids=[s[0] for s in SCENARIOS])
async def test_fault_scenario_loses_nothing(
    name: str,
    inject: Callable[[Stack, TopicReader], Awaitable[None]],
    extra_dlq: int,
    fault_report: list[Row],
) -> None:
    async with running_stack(**MOCK_STACK_OVERRIDES.get(name, {})) as stack:
        reader = TopicReader(stack.cluster.bootstrap_servers, stack.registry_url, TOPICS)
        dlq_reader = TopicReader(stack.cluster.bootstrap_servers, None, [DLQ])
        try:
            await wait_for_trades(reader, 20)
            await inject(stack, reader)
            await traffic_after(stack, reader)
            row = await settle_and_account(
                stack, reader, dlq_reader, Row(name), extra_dlq=extra_dlq
            )
        finally:
            reader.close()
            dlq_reader.close()
    if name in MOCK_MAY_DUPLICATE and row.duplicates:
        row.notes.append("duplicates from the embedded cluster's limits")
    fault_report.append(row)
    assert row.missing == 0, "; ".join(row.notes)
    assert not [n for n in row.notes if "differs" in n], row
    if name not in MOCK_MAY_DUPLICATE:
        assert row.duplicates == 0, row
