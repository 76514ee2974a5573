"""Collects each fault scenario's accounting and prints it as one table after the run."""

from __future__ import annotations

import pytest

from tests.faults.harness import Row

ROWS = pytest.StashKey[list[Row]]()


@pytest.fixture
def fault_report(request: pytest.FixtureRequest) -> list[Row]:
    return request.config.stash.setdefault(ROWS, [])


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    rows = config.stash.get(ROWS, [])
    if not rows:
        return
    write = terminalreporter.write_line
    terminalreporter.section("fault injection: every event accounted for")
    header = (
        f"{'scenario':<40}{'sent':>7}{'delivered':>10}{'dlq':>6}{'gap':>6}{'dups':>6}{'missing':>8}"
    )
    write(header)
    for r in rows:
        write(
            f"{r.scenario:<40}{r.sent:>7}{r.delivered:>10}{r.dlq:>6}{r.gap_announced:>6}"
            f"{r.duplicates:>6}{r.missing:>8}" + (f"  ({'; '.join(r.notes)})" if r.notes else "")
        )
    write("gap = sent depth diffs folded into a snapshot published after a GAP record")
