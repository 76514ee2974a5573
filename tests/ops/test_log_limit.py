"""A log line repeated at frame rate is written a few times a window, the rest counted."""

from __future__ import annotations

from connector.ops.log_limit import LogLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_per_window_then_the_suppressed_count_with_the_next_window() -> None:
    clock = Clock()
    limiter = LogLimiter(burst=2, window_s=10.0, clock=clock)
    assert [limiter.allow("ValueError") for _ in range(5)] == [0, 0, None, None, None]
    assert limiter.allow("TypeError") == 0  # each key has its own window
    clock.now += 9.9
    assert limiter.allow("ValueError") is None
    clock.now += 0.1
    assert limiter.allow("ValueError") == 4
    assert limiter.allow("ValueError") == 0
    assert limiter.allow("ValueError") is None
