"""The sink with a spool, against librdkafka's mock cluster: outages, restarts, a full budget."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError
from prometheus_client import CollectorRegistry

from connector.delivery.sink import KafkaSink, SinkConfig, producer_config, producer_factory
from connector.delivery.spool import Spool
from connector.embedded.kafka import MockCluster
from connector.ops.health import Health
from connector.ops.metrics import Metrics
from connector.records import Record
from tests.conftest import sample
from tests.kafka_reader import Consumed, TopicReader

ORDERS = "tastytrade.orders"  # an account stream: never shed
TRADES = "tplus.trades"  # market data: shed under a marker
DLQ = "connector.dlq"
PRODUCE = 0


def _json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True).encode()


def _record(stream: str, n: int, key: str = "acct") -> Record:
    return Record(stream, key, {"n": n}, 1_000 + n)


@asynccontextmanager
async def _sink(
    cluster: MockCluster,
    directory: Path,
    metrics: Metrics,
    *,
    queue_max: int = 100_000,
    max_bytes: int = 1 << 30,
) -> AsyncIterator[KafkaSink]:
    spool = Spool.open(
        str(directory),
        "unit",
        max_bytes=max_bytes,
        market_level="normal",
        account_level="full",
        metrics=metrics,
    )
    conf = producer_config(
        cluster.bootstrap_servers,
        client_id="t",
        compression="none",
        linger_ms=0,
        delivery_timeout_ms=0,
        queue_max_messages=queue_max,
    )
    sink = KafkaSink(
        producer_factory(conf),
        SinkConfig("unit", {ORDERS: ORDERS, TRADES: TRADES}, DLQ, queue_max_messages=queue_max),
        {ORDERS: _json, TRADES: _json},
        metrics,
        Health(),
        spool=spool,
    )
    await sink.start()
    try:
        yield sink
    finally:
        await sink.close(5)


def _cluster() -> MockCluster:
    cluster = MockCluster(brokers=1)
    for topic in (ORDERS, TRADES, DLQ):
        cluster.create_topic(topic, partitions=1)
    return cluster


def _read(
    cluster: MockCluster, topics: list[str], done: Callable[[dict[str, list[Consumed]]], bool]
) -> dict[str, list[Consumed]]:
    reader = TopicReader(cluster.bootstrap_servers, None, topics)
    try:
        return reader.poll_until(done, 60)
    finally:
        reader.close()


def _numbers(records: list[Consumed]) -> list[int]:
    return [json.loads(r.value)["n"] for r in sorted(records, key=lambda r: r.offset)]


async def test_an_outage_longer_than_the_producer_queue_waits_in_the_spool_in_order(
    tmp_path: Path, metrics: Metrics
) -> None:
    with _cluster() as cluster:
        async with _sink(cluster, tmp_path, metrics, queue_max=20) as sink:
            await sink.send(_record(ORDERS, 0))
            cluster.set_broker_down(-1)
            for n in range(1, 200):
                # The producer holds 20: the rest wait in the spool, the sender does not.
                await asyncio.wait_for(sink.send(_record(ORDERS, n)), timeout=10)
            assert sink.pending <= 20
            cluster.set_broker_up(-1)
            got = await asyncio.to_thread(
                _read, cluster, [ORDERS], lambda rs: len(rs[ORDERS]) >= 200
            )
        assert _numbers(got[ORDERS]) == list(range(200))
        ids = [r.headers["event_id"] for r in got[ORDERS]]
        assert len(set(ids)) == 200 and all(i.startswith(b"unit:") for i in ids)
        assert sample(metrics, "connector_spool_records") == 0


async def test_a_restart_drains_the_spool_before_new_records_of_its_streams(
    tmp_path: Path, metrics: Metrics
) -> None:
    with _cluster() as cluster:
        async with _sink(cluster, tmp_path, metrics) as sink:
            cluster.set_broker_down(-1)
            for n in range(50):
                await sink.send(_record(ORDERS, n))
            assert await sink.close(0.5) == 0  # nothing lost: it stays in the spool
        cluster.set_broker_up(-1)
        again = Metrics(CollectorRegistry())
        async with _sink(cluster, tmp_path, again) as sink:
            for n in range(50, 60):
                await sink.send(_record(ORDERS, n))
            got = await asyncio.to_thread(
                _read, cluster, [ORDERS], lambda rs: len(rs[ORDERS]) >= 60
            )
    numbers = _numbers(got[ORDERS])
    # At least once: a record acknowledged just before the close may come again, with its id.
    assert sorted(set(numbers)) == list(range(60))
    first_new = numbers.index(50)
    assert set(numbers[:first_new]) == set(range(50)) and numbers[first_new:] == list(range(50, 60))
    by_id: dict[bytes, set[int]] = {}
    for r in got[ORDERS]:
        by_id.setdefault(r.headers["event_id"], set()).add(json.loads(r.value)["n"])
    assert all(len(ns) == 1 for ns in by_id.values()), "one event id named two records"


async def test_at_the_budget_account_streams_wait_and_market_data_is_shed_under_markers(
    tmp_path: Path, metrics: Metrics
) -> None:
    with _cluster() as cluster:
        async with _sink(cluster, tmp_path, metrics, max_bytes=4000) as sink:
            cluster.set_broker_down(-1)
            n = 0
            while not sink.congested():  # fill to the watermark (0.9 of 4000 bytes)
                await sink.send(_record(ORDERS, n))
                n += 1
            for t in range(5):
                await sink.send(_record(TRADES, t, key="1"))  # shed at once, never waits
            shed = sample(
                metrics,
                "connector_events_discarded_total",
                venue="tplus",
                stream="trades",
                reason="spool_full",
            )
            assert shed == 5
            # Account records still fit up to the budget, then their sender waits.
            blocked: asyncio.Task[None] | None = None
            for m in range(n, n + 100):
                task = asyncio.ensure_future(sink.send(_record(ORDERS, m)))
                done, _ = await asyncio.wait([task], timeout=2)
                if not done:
                    blocked = task
                    break
            assert blocked is not None, "an account stream was never made to wait"
            last = m
            assert sink._spool is not None and sink._spool.used_bytes >= 4000
            cluster.set_broker_up(-1)
            await asyncio.wait_for(blocked, timeout=30)
            await sink.send(_record(TRADES, 99, key="1"))  # room again: the end marker
            got = await asyncio.to_thread(
                _read,
                cluster,
                [ORDERS, TRADES, DLQ],
                lambda rs: len(rs[ORDERS]) >= last + 1 and len(rs[DLQ]) >= 2 and bool(rs[TRADES]),
            )
    assert _numbers(got[ORDERS]) == list(range(last + 1))  # every account record, in order
    assert _numbers(got[TRADES]) == [99]
    start, end = sorted(got[DLQ], key=lambda r: r.offset)
    assert start.headers["reason"] == end.headers["reason"] == b"spool_full"
    assert start.headers["stream"] == TRADES.encode()
    assert end.headers["shed_count"] == b"5"


async def test_a_refused_spooled_record_is_replaced_by_its_dead_letter_in_the_spool(
    tmp_path: Path, metrics: Metrics
) -> None:
    with _cluster() as cluster:
        async with _sink(cluster, tmp_path, metrics) as sink:
            cluster.push_request_errors(PRODUCE, [KafkaError.TOPIC_AUTHORIZATION_FAILED])
            await sink.send(_record(ORDERS, 1))
            got = await asyncio.to_thread(_read, cluster, [DLQ], lambda rs: bool(rs[DLQ]))
            assert got[DLQ][0].headers["stage"] == b"deliver"
            assert await sink.close(5) == 0
            assert sample(metrics, "connector_spool_records") == 0
