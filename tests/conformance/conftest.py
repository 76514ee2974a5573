"""Fixtures for the SDK conformance checks: the SDK environments and the counts summary."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conformance.sdk_venvs import ensure

Record = Callable[[str, list[str]], None]
_SUMMARY = pytest.StashKey[list[tuple[str, list[str]]]]()


@pytest.fixture(scope="session")
def tastytrade_python() -> Path:
    return ensure("tastytrade").python


@pytest.fixture(scope="session")
def tpluspy_python() -> Path:
    return ensure("tpluspy").python


@pytest.fixture(scope="session")
def orderchain_python() -> Path:
    return ensure("tastytrade-orderchain").python


@pytest.fixture
def conformance_counts(request: pytest.FixtureRequest) -> Record:
    """Keep a check's per-type counts for the end-of-run summary (shown with or without -s)."""
    summary = request.config.stash.setdefault(_SUMMARY, [])

    def record(title: str, lines: list[str]) -> None:
        summary.append((title, lines))
        print(title, *lines, sep="\n  ")

    return record


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    summary = config.stash.get(_SUMMARY, [])
    if not summary:
        return
    terminalreporter.section("SDK conformance: objects read per type")
    for title, lines in summary:
        terminalreporter.write_line(title)
        for line in lines:
            terminalreporter.write_line(f"  {line}")
