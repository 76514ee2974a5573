"""The hot counters and histograms export exactly what prometheus-client's own would."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from connector.ops.metrics import HotCounter, HotHistogram, Metrics

BUCKETS = (0.0005, 0.001, 0.01, 0.5, 1.0, 30.0)


def _lines(registry: CollectorRegistry) -> list[str]:
    """The exposition's sample lines, without prometheus-client's ``_created`` samples."""
    text = generate_latest(registry).decode()
    return sorted(line for line in text.splitlines() if "_created" not in line)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b"]), st.integers(min_value=0, max_value=1000)),
        max_size=20,
    )
)
def test_a_hot_counter_exports_what_a_counter_does(increments: list[tuple[str, int]]) -> None:
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    reference = Counter("things", "Things done.", ["topic"], registry=theirs)
    hot = HotCounter("things", "Things done.", ["topic"], registry=ours)
    for label in ("a", "b"):
        reference.labels(label)
        hot.labels(label)
    for label, amount in increments:
        reference.labels(label).inc(amount)
        hot.labels(label).value += amount
    assert _lines(ours) == _lines(theirs)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.sampled_from([0.0, 0.0005, 0.0007, 0.001, 0.25, 0.5, 1.0, 29.9, 30.0, 31.0, 1e6]),
        max_size=30,
    )
)
def test_a_hot_histogram_exports_what_a_histogram_does(values: list[float]) -> None:
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    reference = Histogram("lag", "Lag.", ["stream"], buckets=BUCKETS, registry=theirs)
    hot = HotHistogram("lag", "Lag.", ["stream"], BUCKETS, registry=ours)
    for value in values:
        reference.labels("s").observe(value)
        hot.labels("s").observe(value)
    if not values:
        reference.labels("s")
        hot.labels("s")
    assert _lines(ours) == _lines(theirs)


def test_the_last_frame_age_is_computed_at_scrape_time() -> None:
    now = [100.0]
    registry = CollectorRegistry()
    metrics = Metrics(registry, clock=lambda: now[0])
    slot = metrics.last_message.slot("tplus", "depth", "1")
    now[0] = 103.5
    labels = {"venue": "tplus", "stream": "depth", "subscription": "1"}
    assert registry.get_sample_value("connector_seconds_since_last_message", labels) == 3.5
    slot.at = 103.0
    assert registry.get_sample_value("connector_seconds_since_last_message", labels) == 0.5


@pytest.mark.parametrize("name", ["connector_records_delivered", "connector_frames_received"])
def test_hot_metrics_are_registered_once_under_their_names(name: str) -> None:
    registry = CollectorRegistry()
    Metrics(registry)
    assert [m.name for m in registry.collect()].count(name) == 1
