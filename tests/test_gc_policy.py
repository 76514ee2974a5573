"""The collector settings a connector process applies once it has started."""

from __future__ import annotations

import subprocess
import sys

from connector import gc_policy


def test_start_up_objects_are_frozen_and_young_collections_are_rarer() -> None:
    # In a child process: the policy is process-wide and must not touch the test runner.
    code = (
        "import gc\n"
        "from connector import gc_policy\n"
        "before = gc.get_freeze_count()\n"
        "gc_policy.settle_after_startup()\n"
        "print(before, gc.get_freeze_count(), *gc.get_threshold())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    before, frozen, young, middle, old = map(int, out)
    assert before == 0 and frozen > 1000
    policy = (gc_policy.YOUNG_THRESHOLD, gc_policy.MIDDLE_THRESHOLD, gc_policy.OLD_THRESHOLD)
    assert (young, middle, old) == policy
    assert young >= 10 * 700, "young collections must be far rarer than CPython's default"
