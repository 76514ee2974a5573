"""The interpreter settings a connector process applies once it has started."""

from __future__ import annotations

import subprocess
import sys

from connector.ops import process_policy


def test_start_up_objects_are_frozen_collections_rarer_and_the_gil_handed_over_sooner() -> None:
    # In a child process: the settings are process-wide and must not touch the test runner.
    code = (
        "import gc, sys\n"
        "from connector.ops import process_policy\n"
        "before = gc.get_freeze_count(), sys.getswitchinterval()\n"
        "process_policy.apply_after_startup()\n"
        "print(*before, gc.get_freeze_count(), *gc.get_threshold(), sys.getswitchinterval())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    frozen_before, switch_before = int(out[0]), float(out[1])
    frozen, young, middle, old = map(int, out[2:6])
    switch = float(out[6])
    assert frozen_before == 0 and frozen > 1000
    policy = (
        process_policy.YOUNG_THRESHOLD,
        process_policy.MIDDLE_THRESHOLD,
        process_policy.OLD_THRESHOLD,
    )
    assert (young, middle, old) == policy
    assert young >= 10 * 700, "young collections must be far rarer than CPython's default"
    assert switch == process_policy.SWITCH_INTERVAL_S < switch_before
