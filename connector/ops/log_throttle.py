"""Rate limits for log lines that repeat once per retry.

While brokers are down librdkafka logs a FAIL line for every connection attempt
(about 20 a second for three brokers), and its error callback fires as often:
enough to bury the one line that says what is wrong. A throttle lets the first
few lines of a kind through per window and counts the rest, and the next line
let through carries that count, so nothing is hidden, only folded.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass


@dataclass(slots=True)
class _Window:
    started: float
    passed: int = 0
    suppressed: int = 0


class Throttle:
    """At most ``burst`` events per key per ``window_s``; thread-safe (librdkafka's threads)."""

    def __init__(
        self,
        window_s: float = 10.0,
        burst: int = 3,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._window_s = window_s
        self._burst = burst
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[Hashable, _Window] = {}

    def admit(self, key: Hashable) -> int | None:
        """None to drop this event; else how many of its kind were dropped before it."""
        now = self._clock()
        with self._lock:
            window = self._windows.get(key)
            if window is None or now - window.started >= self._window_s:
                carried = window.suppressed if window is not None else 0
                self._windows[key] = _Window(now, passed=1)
                return carried
            if window.passed < self._burst:
                window.passed += 1
                carried, window.suppressed = window.suppressed, 0
                return carried
            window.suppressed += 1
            return None


class RateLimitedLog:
    """A librdkafka ``logger``: its lines in our log, throttled per facility and level.

    confluent-kafka calls ``log(level, "%s [%s] %s", facility, client, message)``;
    the facility (``FAIL``, ``REQTMOUT``, ...) is the kind a throttle counts.
    """

    def __init__(self, target: logging.Logger, throttle: Throttle | None = None) -> None:
        self._target = target
        self._throttle = throttle if throttle is not None else Throttle()

    def log(self, level: int, msg: str, *args: object) -> None:
        facility = args[0] if args else msg
        suppressed = self._throttle.admit((level, facility))
        if suppressed is None:
            return
        extra = {"suppressed": suppressed} if suppressed else None
        self._target.log(level, msg, *args, extra=extra)
