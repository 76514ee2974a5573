"""Interpreter settings for a long-running connector process, applied once it has started.

* **Garbage collector.** Every event allocates a few short-lived containers
  (the decoded frame, the record's value, the encoded bytes), and CPython
  starts a collection of the young generation every 700 allocations; every
  tenth of those also walks the in-flight ledger, and the rarer full ones
  everything imported at start-up. Those objects are freed by reference
  counting, not by the collector, so the collections find almost nothing:
  freezing what start-up built and collecting the young generation less
  often gave about 6 % more depth diffs per second in the benchmark
  (medians of three alternating runs, 56,600 against 53,300), for at most a
  few MB more of cyclic garbage held between collections.
* **GIL switch interval.** librdkafka's delivery reports reach Python on the
  sink's poll thread, which must take the GIL from a busy event loop; by
  default it may wait 5 ms for it, which set the p99 receive → ack latency
  whenever a burst of frames kept the loop busy. 0.5 ms keeps p99 at 5,000
  depth diffs/s under a millisecond (docs/benchmarks.md).

Both are process-wide, so the entry points that own the process apply them
(the CLI's ``run`` and ``dev``, and the benchmark's connector), never a
library call.
"""

from __future__ import annotations

import gc
import sys

#: Allocations between young-generation collections (CPython's default is 700).
YOUNG_THRESHOLD = 20_000
#: Young collections between middle-generation ones (default 10).
MIDDLE_THRESHOLD = 50
#: Middle collections between full ones (default 10).
OLD_THRESHOLD = 100
#: Seconds a thread waiting for the GIL lets the holder run (CPython's default is 0.005).
SWITCH_INTERVAL_S = 0.0005


def apply_after_startup() -> None:
    """Freeze the start-up heap, collect less often, hand the GIL over sooner."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, OLD_THRESHOLD)
    sys.setswitchinterval(SWITCH_INTERVAL_S)
