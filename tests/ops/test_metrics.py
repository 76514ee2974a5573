"""The hot counters and histograms export exactly what prometheus-client's own would."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from connector.ops.metrics import (
    DELIVERY_LATENCY_BUCKETS,
    EVENT_LAG_BUCKETS,
    HotCounter,
    HotHistogram,
    Metrics,
    preset,
)

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


def test_preset_children_export_zero_before_their_first_event() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    preset(metrics.reconnects, ("tplus", "tplus.depth", "1", "silent"))
    preset(metrics.frames_received, ("tplus", "tplus.depth", "1"))
    labels = {"venue": "tplus", "stream": "tplus.depth", "subscription": "1"}
    assert (
        registry.get_sample_value("connector_reconnects_total", {**labels, "reason": "silent"}) == 0
    )
    assert registry.get_sample_value("connector_frames_received_total", labels) == 0
    assert (
        registry.get_sample_value(
            "connector_schema_registry_errors_total", {"operation": "startup"}
        )
        == 0
    )


def test_build_info_process_metrics_and_no_created_series() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry, version="1.2.3")
    metrics.dlq_records.labels("tplus.depth", "decode", "not_json").inc()
    metrics.delivery_latency.labels("tplus.depth").observe(0.1)
    text = generate_latest(registry).decode()
    assert "_created" not in text
    [build] = [
        s.labels
        for family in registry.collect()
        for s in family.samples
        if s.name == "connector_build_info"
    ]
    assert build["version"] == "1.2.3" and build["python"] and build["librdkafka"]
    assert registry.get_sample_value("process_cpu_seconds_total") is not None
    assert registry.get_sample_value("python_info", _python_labels(registry)) == 1


def _python_labels(registry: CollectorRegistry) -> dict[str, str]:
    [labels] = [s.labels for f in registry.collect() for s in f.samples if s.name == "python_info"]
    return labels


def test_latency_buckets_reach_ten_minutes_and_lag_buckets_sit_on_the_alert_thresholds() -> None:
    assert DELIVERY_LATENCY_BUCKETS[-1] == 600.0
    assert {2.0, 5.0} <= set(EVENT_LAG_BUCKETS)
    for buckets in (DELIVERY_LATENCY_BUCKETS, EVENT_LAG_BUCKETS):
        assert list(buckets) == sorted(set(buckets))
    registry = CollectorRegistry()
    Metrics(registry).delivery_latency.labels("t").observe(360.0)  # a broker outage's wait
    le = {"topic": "t"}
    assert (
        registry.get_sample_value(
            "connector_delivery_latency_seconds_bucket", {**le, "le": "300.0"}
        )
        == 0
    )
    assert (
        registry.get_sample_value(
            "connector_delivery_latency_seconds_bucket", {**le, "le": "600.0"}
        )
        == 1
    )
