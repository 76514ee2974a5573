"""Waiting for brokers at start-up: retried with backoff, shown in readiness, bounded."""

from __future__ import annotations

import random

import pytest
from confluent_kafka import KafkaError, KafkaException

from connector.delivery.startup import KafkaUnavailable, wait_for_brokers
from connector.ops.health import Condition, Health


def _refused(timeout_s: float) -> None:
    raise KafkaException(KafkaError(KafkaError._TRANSPORT))


async def test_brokers_that_answer_after_failures_end_the_wait_ready() -> None:
    health = Health()
    seen: list[Condition] = []
    health.add_listener(lambda name, c: seen.append(c))
    attempts: list[float] = []

    def probe(timeout_s: float) -> None:
        attempts.append(timeout_s)
        if len(attempts) < 3:
            _refused(timeout_s)

    await wait_for_brokers(probe, "b1:9092,b2:9092", 30.0, health, random.Random(1))
    assert len(attempts) == 3 and all(0 < t <= 2.0 for t in attempts)
    details = [c.detail for c in seen]
    assert details[0] == "connecting to b1:9092,b2:9092"
    assert "no broker at b1:9092,b2:9092 answered (_TRANSPORT)" in details


async def test_the_deadline_ends_the_wait_with_one_line_naming_the_keys() -> None:
    health = Health()
    with pytest.raises(KafkaUnavailable) as failed:
        await wait_for_brokers(_refused, "b1:9092", 0.3, health, random.Random(1))
    message = str(failed.value)
    assert message == (
        "no Kafka broker at b1:9092 answered within 0.3 s "
        "(kafka.bootstrap_servers, kafka.startup_timeout_s)"
    )
    assert not health.ready()
