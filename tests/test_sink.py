"""The Kafka sink against librdkafka's mock cluster: DLQ paths and re-produce on failure."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from confluent_kafka import KafkaError

from connector import schema_catalog
from connector.embedded.kafka import MockCluster
from connector.embedded.registry import RegistryServer
from connector.health import Health
from connector.metrics import Metrics
from connector.records import DeadLetter, Record
from connector.serde import AvroEncoder, pin_schemas, registry_client
from connector.settings import SchemaRegistrySettings
from connector.sink import KafkaSink, SinkConfig, producer_config, producer_factory
from connector.venues import json_numbers
from connector.venues.tplus import market_data as md
from tests.conftest import sample
from tests.golden import frames
from tests.kafka_reader import TopicReader

TOPIC = "tplus.trades"
DLQ = "connector.dlq"
PRODUCE = 0


@dataclass
class Rig:
    cluster: MockCluster
    registry_url: str
    sink: KafkaSink


@pytest.fixture
async def rig(metrics: Metrics, health: Health) -> AsyncIterator[Rig]:
    with MockCluster() as cluster, RegistryServer() as registry:
        url = registry.start()
        cluster.create_topic(TOPIC, partitions=2)
        cluster.create_topic(DLQ, partitions=1)
        client = registry_client(SchemaRegistrySettings(url=url))
        schema = schema_catalog.schema_text("tplus.trades")
        await asyncio.to_thread(pin_schemas, client, {TOPIC: schema}, auto_register=True)
        encoder = AvroEncoder(client, TOPIC, schema, auto_register=True)
        conf = producer_config(
            cluster.bootstrap_servers,
            client_id="t",
            compression="lz4",
            linger_ms=0,
            delivery_timeout_ms=30_000,
        )
        sink = KafkaSink(
            producer_factory(conf),
            SinkConfig("unit", {"tplus.trades": TOPIC}, DLQ),
            {"tplus.trades": encoder},
            metrics,
            health,
        )
        await sink.start()
        try:
            yield Rig(cluster, url, sink)
        finally:
            assert await sink.close(10) == 0
            client.close()


def _trade(n: int = 0) -> Record:
    return md.parse_trade(json_numbers.loads(frames("tplus", "trades.jsonl")[n]), 1)


def _read(rig: Rig, topics: list[str], counts: dict[str, int], avro: bool) -> dict[str, list]:  # type: ignore[type-arg]
    reader = TopicReader(rig.cluster.bootstrap_servers, rig.registry_url if avro else None, topics)
    try:
        return reader.poll_until(lambda rs: all(len(rs[t]) >= n for t, n in counts.items()))
    finally:
        reader.close()


async def test_records_are_delivered_and_counted(
    rig: Rig, metrics: Metrics, health: Health
) -> None:
    for n in range(3):
        await rig.sink.send(_trade(n))
    got = await asyncio.to_thread(_read, rig, [TOPIC], {TOPIC: 3}, True)
    assert sorted(r.value["trade_id"] for r in got[TOPIC]) == [88001, 122519, 122520]
    assert health.snapshot()["kafka"].ok
    await rig.sink.close(5)
    assert sample(metrics, "connector_records_delivered_total", topic=TOPIC) == 3
    assert sample(metrics, "connector_delivery_latency_seconds_count", topic=TOPIC) == 3


async def test_values_that_do_not_fit_the_schema_go_to_the_dlq(rig: Rig, metrics: Metrics) -> None:
    good = _trade()
    bad = Record(good.stream, good.key, {**good.value, "trade_id": "not a long"}, 5)
    await rig.sink.send(bad)
    await rig.sink.send(Record("tplus.unknown", "k", {}, 6))
    await rig.sink.dead_letter(
        DeadLetter(
            "tplus.depth", "decode", "not_json", "frame is not JSON", b"\xff raw", 7, key="1"
        )
    )
    got = await asyncio.to_thread(_read, rig, [DLQ], {DLQ: 3}, False)
    by_reason = {r.headers["reason"]: r for r in got[DLQ]}
    encode = by_reason[b"encode_failed"]
    assert encode.headers["stage"] == b"encode" and encode.key == "1"
    assert b'"not a long"' in encode.value
    assert by_reason[b"unknown_type"].headers["stage"] == b"route"
    raw = by_reason[b"not_json"]
    assert raw.value == b"\xff raw" and raw.headers["connector"] == b"unit"
    assert raw.headers["received_ns"] == b"7"
    assert (
        sample(
            metrics,
            "connector_dlq_records_total",
            stream="tplus.trades",
            stage="encode",
            reason="encode_failed",
        )
        == 1
    )


async def test_a_failed_delivery_is_produced_again(rig: Rig, metrics: Metrics) -> None:
    # A non-retriable broker error fails the delivery report; the sink produces again.
    rig.cluster.push_request_errors(PRODUCE, [KafkaError.MSG_SIZE_TOO_LARGE])
    await rig.sink.send(_trade())
    got = await asyncio.to_thread(_read, rig, [TOPIC], {TOPIC: 1}, True)
    assert [r.value["trade_id"] for r in got[TOPIC]] == [122519]
    await rig.sink.close(5)
    assert (
        sample(
            metrics,
            "connector_delivery_failures_total",
            topic=TOPIC,
            error="MSG_SIZE_TOO_LARGE",
        )
        == 1
    )
    assert sample(metrics, "connector_records_delivered_total", topic=TOPIC) == 1
