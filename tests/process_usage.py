"""A process's resident memory and open descriptors, read from /proc (Linux)."""

from __future__ import annotations

import os
from pathlib import Path


def rss_mib(pid: int | str = "self") -> float:
    """Resident set size of ``pid`` in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS in /proc/{pid}/status")


def open_fds(pid: int | str = "self") -> int:
    """File descriptors ``pid`` holds open."""
    return len(os.listdir(f"/proc/{pid}/fd"))
