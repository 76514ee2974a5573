"""The throttle folds repeated lines into a count instead of dropping them silently."""

from __future__ import annotations

import logging

import pytest
from confluent_kafka import KafkaException, Producer

from connector.ops.log_throttle import RateLimitedLog, Throttle


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_passes_then_lines_are_counted_and_reported_with_the_next_window() -> None:
    clock = _Clock()
    throttle = Throttle(window_s=10.0, burst=2, clock=clock)
    assert [throttle.admit("FAIL") for _ in range(5)] == [0, 0, None, None, None]
    assert throttle.admit("REQTMOUT") == 0  # another kind has its own budget
    clock.now = 10.0
    assert throttle.admit("FAIL") == 3


def test_librdkafka_lines_of_a_broker_outage_are_folded(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="librdkafka")
    raw: list[str] = []

    class Count:
        def log(self, level: int, msg: str, *args: object) -> None:
            raw.append(msg % args)

    throttled = RateLimitedLog(logging.getLogger("librdkafka"), Throttle(burst=3))
    for logger in (Count(), throttled):
        producer = Producer(
            {"bootstrap.servers": "127.0.0.1:9", "logger": logger, "reconnect.backoff.ms": 10}
        )
        with pytest.raises(KafkaException):
            producer.list_topics(None, 1.0)
        producer.poll(0)
    kept = [r for r in caplog.records if r.name == "librdkafka"]
    assert len(raw) > 10, raw
    assert 0 < len(kept) <= 3
    assert all("FAIL" in r.getMessage() for r in kept)
