"""The dead-letter path: a per-stream rate limit whose overflow is counted, not produced."""

from __future__ import annotations

import pytest

from connector.ops.metrics import Metrics
from connector.pipeline import DeadLetterLimiter, Publisher
from connector.venues.errors import FrameError
from tests.conftest import sample
from tests.fakes import RecordingSink


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_stream_gets_its_burst_then_its_rate(metrics: Metrics) -> None:
    clock = Clock()
    limiter = DeadLetterLimiter(metrics, rate_per_s=2.0, burst=5, clock=clock)
    assert [limiter.allow("tplus.trades") for _ in range(7)] == [True] * 5 + [False] * 2
    clock.now += 1.0  # two more tokens
    assert [limiter.allow("tplus.trades") for _ in range(3)] == [True, True, False]
    clock.now += 60.0  # refills to the burst, no further
    assert sum(limiter.allow("tplus.trades") for _ in range(10)) == 5
    assert sample(metrics, "connector_dlq_suppressed_total", stream="tplus.trades") == 2 + 1 + 5


def test_streams_are_limited_apart(metrics: Metrics) -> None:
    limiter = DeadLetterLimiter(metrics, rate_per_s=1.0, burst=1, clock=Clock())
    assert limiter.allow("a") and not limiter.allow("a")
    assert limiter.allow("b")
    assert sample(metrics, "connector_dlq_suppressed_total", stream="b") == 0


async def test_rejects_over_the_limit_never_reach_the_sink(
    metrics: Metrics, caplog: pytest.LogCaptureFixture
) -> None:
    sink = RecordingSink()
    publisher = Publisher(sink, metrics, DeadLetterLimiter(metrics, 1.0, 3, clock=Clock()))
    error = FrameError("invalid_json", "not JSON")
    for n in range(10):
        await publisher.reject("tplus.trades", error, f"bad {n}", n)
    assert [letter.raw for letter in sink.dead] == [b"bad 0", b"bad 1", b"bad 2"]
    assert sample(metrics, "connector_dlq_suppressed_total", stream="tplus.trades") == 7
    dropped = [
        r for r in caplog.records if r.getMessage() == "dead letters over the rate limit dropped"
    ]
    assert len(dropped) == 1  # logged once per ten seconds, not per letter
