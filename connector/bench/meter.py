"""What a variant process measures: its window, CPU time and every receive → ack latency.

Every run starts with warm-up events (connections, producer id, first
metadata, caches) that are not measured: the window opens at the receive
clock reading that follows them and closes when the expected number of
records has been acknowledged. Latencies are those of the records after the
warm-up. CPU time is the process's, every thread included (librdkafka's
too), over the same window.
"""

from __future__ import annotations

import asyncio
import resource
import threading
import time
from array import array

from connector.bench.stats import Latency, RunResult


class Meter:
    """Counts acknowledgements until ``expected``; thread-safe for the delivery thread.

    ``skip_readings`` receive clock readings and ``skip_acks`` acknowledgements
    (the warm-up, and records such as a snapshot that precede the events)
    come before the measured window.
    """

    def __init__(self, expected: int, *, skip_readings: int = 0, skip_acks: int = 0) -> None:
        self.expected = expected
        self._skip_readings = skip_readings
        self._skip_acks = skip_acks
        self._readings = 0
        self._acks = 0
        self._lock = threading.Lock()
        self._latencies = array("q")
        self._start_ns: int | None = None
        self._cpu_start = 0.0
        self._end_ns = 0
        self._cpu_end = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self.done = asyncio.Event()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def clock_ns(self) -> int:
        """``time.time_ns`` that opens the window at the first reading after the warm-up."""
        now = time.time_ns()
        if self._start_ns is None:
            if self._readings >= self._skip_readings:
                self._start_ns = now
                self._cpu_start = time.process_time()
            self._readings += 1
        return now

    def ack(self, received_ns: int, acked_ns: int) -> None:
        with self._lock:
            self._acks += 1
            if self._acks > self._skip_acks:
                self._latencies.append(acked_ns - received_ns)
            if self._acks != self.expected:
                return
            self._end_ns = acked_ns
            self._cpu_end = time.process_time()
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.done.set)

    @property
    def acked(self) -> int:
        return self._acks

    def result(self, events: int) -> RunResult:
        if self._start_ns is None or not self.done.is_set():
            raise RuntimeError("the run did not complete")
        return RunResult(
            events=events,
            seconds=(self._end_ns - self._start_ns) / 1e9,
            cpu_s=self._cpu_end - self._cpu_start,
            peak_rss_kb=peak_rss_kb(),
            latency=Latency.of(self._latencies),
            start_ns=self._start_ns,
            end_ns=self._end_ns,
        )


def peak_rss_kb() -> int:
    """This process's peak resident set (``VmHWM``), in KiB.

    Not ``ru_maxrss``: Linux carries that across ``fork``/``exec``, so a
    variant would report its parent's peak whenever the parent's was higher.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
