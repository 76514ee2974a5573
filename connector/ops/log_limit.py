"""Rate limits for log lines a hostile peer could repeat at frame rate.

A venue that sends the same poisonous frame thousands of times a second must
not turn the log into thousands of ERROR lines a second: the first few per
window are written, the rest are counted and reported with the next line
that gets through. Metrics still count every occurrence.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Window:
    started: float
    written: int = 0
    suppressed: int = 0


class LogLimiter:
    """At most ``burst`` lines per key per ``window_s``; the rest are only counted."""

    def __init__(
        self,
        burst: int = 5,
        window_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._burst = burst
        self._window_s = window_s
        self._clock = clock
        self._windows: dict[str, _Window] = {}

    def allow(self, key: str) -> int | None:
        """None to drop this line; else how many lines of ``key`` were dropped before it."""
        now = self._clock()
        window = self._windows.get(key)
        if window is None or now - window.started >= self._window_s:
            carried = 0 if window is None else window.suppressed
            window = self._windows[key] = _Window(now)
            window.written = 1
            return carried
        if window.written < self._burst:
            window.written += 1
            return 0
        window.suppressed += 1
        return None
