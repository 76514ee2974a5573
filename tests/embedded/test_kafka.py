"""The embedded mock cluster behaves like Kafka for a real confluent-kafka client."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer

from connector.embedded.kafka import EmbeddedKafkaError, MockCluster

PRODUCE_API_KEY = 0
DEADLINE_S = 30.0


@pytest.fixture
def cluster() -> Iterator[MockCluster]:
    with MockCluster(brokers=3) as mock:
        yield mock


class DeliveryLog:
    """Collects delivery reports so tests can assert on them after flush()."""

    def __init__(self) -> None:
        self.delivered: list[Message] = []
        self.failed: list[KafkaError] = []

    def __call__(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            self.delivered.append(msg)
        else:
            self.failed.append(err)


def make_producer(cluster: MockCluster, **overrides: Any) -> Producer:
    conf: dict[str, Any] = {
        "bootstrap.servers": cluster.bootstrap_servers,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "message.timeout.ms": 30_000,
        "reconnect.backoff.ms": 50,
        "reconnect.backoff.max.ms": 500,
    }
    conf.update(overrides)
    return Producer(conf)


def consume(cluster: MockCluster, topic: str, count: int) -> list[Message]:
    """Read ``count`` records from the start of ``topic`` with a fresh consumer group."""
    consumer = Consumer(
        {
            "bootstrap.servers": cluster.bootstrap_servers,
            "group.id": f"test-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
            "enable.auto.commit": False,
        }
    )
    received: list[Message] = []
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + DEADLINE_S
        while len(received) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            received.append(msg)
    finally:
        consumer.close()
    return received


def test_bootstrap_lists_one_local_address_per_broker(cluster: MockCluster) -> None:
    addresses = cluster.bootstrap_servers.split(",")
    assert len(addresses) == 3
    assert all(address.startswith("127.0.0.1:") for address in addresses)


def test_produce_and_consume_round_trip(cluster: MockCluster) -> None:
    cluster.create_topic("trades", partitions=3)
    producer = make_producer(cluster)
    metadata = producer.list_topics("trades", timeout=10)
    assert sorted(metadata.topics["trades"].partitions) == [0, 1, 2]
    assert sorted(metadata.brokers) == [1, 2, 3]

    log = DeliveryLog()
    sent = {f"key-{i}".encode(): f"value-{i}".encode() for i in range(30)}
    for key, value in sent.items():
        producer.produce(
            "trades", key=key, value=value, headers=[("venue", b"test")], on_delivery=log
        )
    assert producer.flush(DEADLINE_S) == 0
    assert log.failed == []
    assert len(log.delivered) == len(sent)
    assert {msg.partition() for msg in log.delivered} == {0, 1, 2}

    received = consume(cluster, "trades", len(sent))
    assert {msg.key(): msg.value() for msg in received} == sent
    assert all(msg.headers() == [("venue", b"test")] for msg in received)
    # Keyed records land on a stable partition: the consumer sees the producer's choice.
    assert {(m.key(), m.partition()) for m in received} == {
        (m.key(), m.partition()) for m in log.delivered
    }


def test_create_topic_reports_kafka_error_names(cluster: MockCluster) -> None:
    cluster.create_topic("dup")
    with pytest.raises(EmbeddedKafkaError, match="TOPIC_ALREADY_EXISTS"):
        cluster.create_topic("dup")
    with pytest.raises(EmbeddedKafkaError, match="INVALID_PARTITIONS"):
        cluster.create_topic("none", partitions=0)
    with pytest.raises(EmbeddedKafkaError, match="INVALID_REPLICATION_FACTOR"):
        cluster.create_topic("wide", replication_factor=4)


def test_unknown_broker_is_an_error(cluster: MockCluster) -> None:
    with pytest.raises(EmbeddedKafkaError, match="BROKER_NOT_AVAILABLE"):
        cluster.set_broker_down(42)


def test_message_produced_during_outage_is_delivered_after_recovery(
    cluster: MockCluster,
) -> None:
    cluster.create_topic("outage")
    producer = make_producer(cluster)
    log = DeliveryLog()
    producer.produce("outage", key=b"before", value=b"1", on_delivery=log)
    assert producer.flush(DEADLINE_S) == 0

    cluster.set_broker_down(-1)
    producer.produce("outage", key=b"during", value=b"2", on_delivery=log)
    # While every broker is down the record must stay queued, neither delivered nor failed.
    # poll() returns early on each event (e.g. "all brokers down"), so watch a full second.
    window_end = time.monotonic() + 1.0
    while time.monotonic() < window_end:
        producer.poll(0.1)
    assert len(producer) == 1
    assert [m.key() for m in log.delivered] == [b"before"]
    assert log.failed == []

    cluster.set_broker_up(-1)
    assert producer.flush(DEADLINE_S) == 0
    assert log.failed == []
    assert [m.key() for m in log.delivered] == [b"before", b"during"]
    assert [m.key() for m in consume(cluster, "outage", 2)] == [b"before", b"during"]


def test_injected_produce_errors_are_seen_by_a_non_retrying_producer(
    cluster: MockCluster,
) -> None:
    cluster.create_topic("faulty")
    producer = make_producer(cluster, **{"enable.idempotence": False, "retries": 0})
    # Warm up metadata and the connection so the injected error hits the Produce request.
    producer.list_topics("faulty", timeout=10)
    cluster.push_request_errors(PRODUCE_API_KEY, [KafkaError.NOT_ENOUGH_REPLICAS])
    log = DeliveryLog()
    producer.produce("faulty", value=b"x", on_delivery=log)
    assert producer.flush(DEADLINE_S) == 0
    assert [err.code() for err in log.failed] == [KafkaError.NOT_ENOUGH_REPLICAS]


def test_idempotent_producer_retries_through_injected_errors(cluster: MockCluster) -> None:
    cluster.create_topic("retry")
    producer = make_producer(cluster)
    producer.list_topics("retry", timeout=10)
    cluster.push_request_errors(PRODUCE_API_KEY, [KafkaError.NOT_ENOUGH_REPLICAS] * 2)
    log = DeliveryLog()
    producer.produce("retry", key=b"k", value=b"v", on_delivery=log)
    assert producer.flush(DEADLINE_S) == 0
    assert log.failed == []
    assert len(log.delivered) == 1
    # Retries must not have written the record more than once.
    assert log.delivered[0].offset() == 0
    assert [m.value() for m in consume(cluster, "retry", 1)] == [b"v"]


def test_cleared_request_errors_are_not_applied(cluster: MockCluster) -> None:
    cluster.create_topic("cleared")
    producer = make_producer(cluster, **{"enable.idempotence": False, "retries": 0})
    producer.list_topics("cleared", timeout=10)
    cluster.push_request_errors(PRODUCE_API_KEY, [KafkaError.NOT_ENOUGH_REPLICAS])
    cluster.clear_request_errors(PRODUCE_API_KEY)
    log = DeliveryLog()
    producer.produce("cleared", value=b"x", on_delivery=log)
    assert producer.flush(DEADLINE_S) == 0
    assert log.failed == []
    assert len(log.delivered) == 1


def test_broker_rtt_delays_responses(cluster: MockCluster) -> None:
    cluster.create_topic("slow")
    producer = make_producer(cluster)
    producer.list_topics("slow", timeout=10)
    cluster.set_broker_rtt(-1, 300)
    log = DeliveryLog()
    started = time.monotonic()
    producer.produce("slow", value=b"x", on_delivery=log)
    assert producer.flush(DEADLINE_S) == 0
    assert time.monotonic() - started >= 0.3
    assert len(log.delivered) == 1


def test_close_is_idempotent_and_disables_the_cluster() -> None:
    mock = MockCluster()
    mock.close()
    mock.close()
    with pytest.raises(EmbeddedKafkaError, match="closed"):
        mock.create_topic("late")


def test_brokers_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        MockCluster(brokers=0)
