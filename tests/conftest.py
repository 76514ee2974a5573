"""Shared fixtures: metrics and health per test, never the global registry."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from connector.ops.health import Health
from connector.ops.metrics import Metrics


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(CollectorRegistry())


@pytest.fixture
def health() -> Health:
    return Health()


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    """A metric's current value (0 when it has no sample yet)."""
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value
