"""Every Prometheus metric the connector exports, on an injected registry.

All metrics live here so their names, labels and meanings can be read in one
place (and are documented in the README). Labels take only bounded values:
venue, stream, topic, configured asset ids, and closed sets of stage, reason
and error names. Never an account, an order id or exception text.

``stream`` is always the logical stream name (``tplus.user-trades``), the
same on connection, lag, DLQ and baseline metrics, so they join; a socket
that carries several streams has its own name (``tastytrade.streamer``).
Labelled counters are preset to 0 for every label set known at wiring time
(``preset``), so a first event is an increase Prometheus can see.
"""

from __future__ import annotations

import platform
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from threading import Lock
from typing import Generic, Protocol, TypeVar

from confluent_kafka import libversion
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Metric,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

_SUB_SECOND_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
)
EVENT_LAG_BUCKETS = (*_SUB_SECOND_BUCKETS, 2.0, 5.0, 10.0, 30.0, 60.0)
"""Venue lag: 2 s and 5 s are bounds because the lag alert's thresholds sit on them."""
DELIVERY_LATENCY_BUCKETS = (*_SUB_SECOND_BUCKETS, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
"""Receipt to acknowledgement: with ``message.timeout.ms=0`` a record waits out a broker
outage, so the buckets reach ten minutes and a p99 is not capped at a short top bound."""


class Tally:
    """One labelled child of a hot counter: a plain number.

    prometheus-client's children take a lock on every ``inc``; on the per-frame
    and per-record path that was a tenth of the connector's time. A tally is
    only added to by one thread at a time (the event loop, or the sink under
    its ledger lock) and read when scraped, so it needs none.
    """

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: float = 0

    def inc(self, amount: float = 1) -> None:
        self.value += amount


class LatencyTally:
    """One labelled child of a hot histogram: bucket counts and a sum, as plain numbers."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        # Buckets are "less than or equal": the first bound >= value.
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value


Child = TypeVar("Child")


class _HotFamily(Collector, Generic[Child]):
    """A labelled family of plain-number children, exported at scrape time (see Tally)."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        registry: CollectorRegistry,
        new_child: Callable[[], Child],
    ) -> None:
        self._name = name
        self._documentation = documentation
        self._labelnames = list(labelnames)
        self._new_child = new_child
        self._children: dict[tuple[str, ...], Child] = {}
        registry.register(self)

    def labels(self, *values: str) -> Child:
        child = self._children.get(values)
        if child is None:
            child = self._children.setdefault(values, self._new_child())
        return child

    def _items(self) -> list[tuple[list[str], Child]]:
        return [(list(values), child) for values, child in list(self._children.items())]


class HotCounter(_HotFamily[Tally]):
    """A labelled counter of Tally children."""

    def __init__(
        self, name: str, documentation: str, labelnames: Sequence[str], registry: CollectorRegistry
    ) -> None:
        super().__init__(name, documentation, labelnames, registry, Tally)

    def describe(self) -> Iterable[Metric]:
        yield CounterMetricFamily(self._name, self._documentation, labels=self._labelnames)

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily(self._name, self._documentation, labels=self._labelnames)
        for values, child in self._items():
            family.add_metric(values, child.value)
        yield family


class HotHistogram(_HotFamily[LatencyTally]):
    """A labelled histogram of LatencyTally children."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        buckets: Sequence[float],
        registry: CollectorRegistry,
    ) -> None:
        self._buckets = tuple(buckets)
        super().__init__(
            name, documentation, labelnames, registry, lambda: LatencyTally(self._buckets)
        )

    def describe(self) -> Iterable[Metric]:
        yield HistogramMetricFamily(self._name, self._documentation, labels=self._labelnames)

    def collect(self) -> Iterable[Metric]:
        family = HistogramMetricFamily(self._name, self._documentation, labels=self._labelnames)
        # repr of a float is the "le" text prometheus-client's own Histogram writes.
        bounds = [*(repr(float(b)) for b in self._buckets), "+Inf"]
        for values, child in self._items():
            counts, total = list(child.counts), child.sum
            cumulative, running = [], 0
            for bound, count in zip(bounds, counts, strict=True):
                running += count
                cumulative.append((bound, running))
            family.add_metric(values, cumulative, total)
        yield family


class Labelled(Protocol):
    """A labelled family: prometheus-client's or a _HotFamily."""

    def labels(self, *values: str) -> object: ...


def preset(family: Labelled, *label_sets: Sequence[str]) -> None:
    """Create each child at 0 now, so its first event shows as an increase.

    A series that first appears at 1 has no increase to see: ``increase()``
    and ``rate()`` start counting from the first sample they have.
    """
    for values in label_sets:
        family.labels(*values)


class LastFrame:
    """When the last frame of one connection arrived (monotonic seconds); set per frame."""

    __slots__ = ("at",)

    def __init__(self, at: float) -> None:
        self.at = at


class _LastMessageCollector(Collector):
    """Computes seconds since the last message per connection at scrape time.

    A gauge set on every frame would be stale between frames; computing the
    age when scraped makes a silent stream visible without a timer. A
    connection stores the arrival time in its own LastFrame, one attribute
    write per frame.
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = Lock()
        self._last: dict[tuple[str, str, str], LastFrame] = {}

    def slot(self, venue: str, stream: str, subscription: str) -> LastFrame:
        """The connection's LastFrame, created (as of now) on first use."""
        key = (venue, stream, subscription)
        with self._lock:
            found = self._last.get(key)
            if found is None:
                found = self._last[key] = LastFrame(self._clock())
        return found

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "connector_seconds_since_last_message",
            "Seconds since the last frame arrived on a venue connection.",
            labels=["venue", "stream", "subscription"],
        )
        now = self._clock()
        with self._lock:
            items = list(self._last.items())
        for labels, last in items:
            family.add_metric(list(labels), max(0.0, now - last.at))
        yield family


@dataclass(frozen=True, slots=True)
class TopicInstruments:
    """The per-record instruments of one topic, resolved once.

    ``labels()`` hashes on every call; the sink touches these on every record
    and acknowledgement, so it keeps the children instead.
    """

    produced: Tally
    delivered: Tally
    latency: LatencyTally


class Metrics:
    """The connector's instruments; build one per process and pass it down."""

    def __init__(
        self,
        registry: CollectorRegistry,
        clock: Callable[[], float] = time.monotonic,
        version: str = "unknown",
    ) -> None:
        # prometheus-client's switch is process-wide: a `_created` series per counter child
        # doubles the series count and no rule reads it.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = registry
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        self.build_info = Gauge(
            "connector_build_info",
            "Always 1; the labels say which build runs.",
            ["version", "python", "librdkafka"],
            registry=registry,
        )
        self.build_info.labels(version, platform.python_version(), libversion()[0]).set(1)
        conn = ["venue", "stream", "subscription"]
        self.frames_received = HotCounter(
            "connector_frames_received",
            "WebSocket frames received from a venue (data and control).",
            conn,
            registry=registry,
        )
        self.frame_bytes = HotCounter(
            "connector_frame_bytes_received",
            "Bytes of WebSocket frames received from a venue.",
            conn,
            registry=registry,
        )
        self.records_produced = HotCounter(
            "connector_records_produced",
            "Records handed to the Kafka producer (including dead letters).",
            ["topic"],
            registry=registry,
        )
        self.records_delivered = HotCounter(
            "connector_records_delivered",
            "Records acknowledged by the brokers.",
            ["topic"],
            registry=registry,
        )
        self.delivery_failures = Counter(
            "connector_delivery_failures",
            "Delivery reports with an error; the record is produced again.",
            ["topic", "error"],
            registry=registry,
        )
        self.dlq_records = Counter(
            "connector_dlq_records",
            "Frames sent to the dead-letter topic.",
            ["stream", "stage", "reason"],
            registry=registry,
        )
        self.reconnects = Counter(
            "connector_reconnects",
            "Venue connections re-opened, by the reason the previous one ended.",
            ["venue", "stream", "subscription", "reason"],
            registry=registry,
        )
        self.connection_state = Gauge(
            "connector_connection_up",
            "1 while the venue connection is open, 0 otherwise.",
            conn,
            registry=registry,
        )
        self.sequence_gaps = Counter(
            "connector_sequence_gaps",
            "Sequence gaps detected on an order-book stream.",
            ["venue", "stream", "subscription"],
            registry=registry,
        )
        self.resyncs = Counter(
            "connector_book_resyncs",
            "REST snapshots fetched to (re)synchronise a book, by reason.",
            ["venue", "subscription", "reason"],
            registry=registry,
        )
        self.snapshot_failures = Counter(
            "connector_snapshot_failures",
            "REST snapshot requests that failed and were retried.",
            ["venue", "subscription"],
            registry=registry,
        )
        self.discarded = Counter(
            "connector_events_discarded",
            "Venue events deliberately not published (stale duplicates, buffer overflow).",
            ["venue", "stream", "reason"],
            registry=registry,
        )
        self.event_lag = HotHistogram(
            "connector_event_lag_seconds",
            "Receive time minus the venue's event time.",
            ["stream"],
            buckets=EVENT_LAG_BUCKETS,
            registry=registry,
        )
        self.delivery_latency = HotHistogram(
            "connector_delivery_latency_seconds",
            "Time from receiving a frame to the broker acknowledging its record.",
            ["topic"],
            buckets=DELIVERY_LATENCY_BUCKETS,
            registry=registry,
        )
        self.producer_queue = Gauge(
            "connector_producer_queue_messages",
            "Records waiting in the producer for acknowledgement.",
            registry=registry,
        )
        self.producer_queue_capacity = Gauge(
            "connector_producer_queue_capacity",
            "Records the producer may hold unacknowledged before sources wait.",
            registry=registry,
        )
        self.registry_errors = Counter(
            "connector_schema_registry_errors",
            "Failed schema registry calls, by operation.",
            ["operation"],
            registry=registry,
        )
        preset(self.registry_errors, ["startup"])
        self.signin_failures = Counter(
            "connector_signin_failures",
            "Failed venue sign-ins or token refreshes, by reason.",
            ["venue", "reason"],
            registry=registry,
        )
        self.token_expiry = Gauge(
            "connector_token_expiry_seconds",
            "Seconds until the soonest-expiring venue token of this connector expires.",
            ["venue"],
            registry=registry,
        )
        self.baseline_records = Counter(
            "connector_baseline_records",
            "Records published from a REST baseline after a (re)connect.",
            ["venue", "stream"],
            registry=registry,
        )
        self.baseline_failures = Counter(
            "connector_baseline_failures",
            "REST baseline requests that failed, by reason; the stream goes on without it.",
            ["venue", "stream", "reason"],
            registry=registry,
        )
        self.rest_answers_refused = Counter(
            "connector_rest_answers_refused",
            "Venue REST answers refused: larger than the cap, or not complete by the deadline.",
            ["venue", "reason"],
            registry=registry,
        )
        self.dlq_suppressed = Counter(
            "connector_dlq_suppressed",
            "Dead letters not produced because their stream passed its dead-letter rate limit.",
            ["stream"],
            registry=registry,
        )
        self.ops_connections_refused = Counter(
            "connector_ops_connections_refused",
            "Operations-port connections closed unserved: over the cap, too slow or too large.",
            ["reason"],
            registry=registry,
        )
        self.oldest_undelivered = Gauge(
            "connector_oldest_undelivered_seconds",
            "Age of the oldest record handed to the producer and not yet acknowledged.",
            registry=registry,
        )
        self.producer_rebuilds = Counter(
            "connector_producer_rebuilds",
            "Kafka producers replaced after a fatal error, by error name.",
            ["reason"],
            registry=registry,
        )
        self.internal_errors = Counter(
            "connector_internal_errors",
            "Unexpected exceptions contained at a stream's boundary; each frame is dead-lettered.",
            ["venue", "stream", "stage", "error"],
            registry=registry,
        )
        self.task_restarts = Counter(
            "connector_task_restarts",
            "Long-running source tasks that ended unexpectedly and were restarted.",
            ["venue", "stream", "reason"],
            registry=registry,
        )
        self.ready = Gauge(
            "connector_ready",
            "1 when the connector reports ready on /readyz.",
            registry=registry,
        )
        self.spool_bytes = Gauge(
            "connector_spool_bytes",
            "Bytes of records held in the durable spool (keys, values, headers).",
            registry=registry,
        )
        self.spool_budget_bytes = Gauge(
            "connector_spool_budget_bytes",
            "spool.max_bytes: the disk budget of the spool.",
            registry=registry,
        )
        self.spool_records = Gauge(
            "connector_spool_records",
            "Records held in the durable spool (not yet acknowledged by the brokers).",
            registry=registry,
        )
        self.spool_oldest = Gauge(
            "connector_spool_oldest_seconds",
            "Age of the oldest record in the spool (receive time to now).",
            registry=registry,
        )
        self.spool_append = Histogram(
            "connector_spool_append_seconds",
            "Per spool batch: from its oldest record being handed over to its commit.",
            buckets=_SUB_SECOND_BUCKETS,
            registry=registry,
        )
        self.spool_fsync = Histogram(
            "connector_spool_fsync_seconds",
            "Duration of spool commits made with synchronous=FULL (an fsync each).",
            buckets=_SUB_SECOND_BUCKETS,
            registry=registry,
        )
        self.records_purged = Counter(
            "connector_records_purged",
            "Records dropped unacknowledged at shutdown (only without a spool).",
            registry=registry,
        )
        self.last_message = _LastMessageCollector(clock)
        registry.register(self.last_message)
        self._topics: dict[str, TopicInstruments] = {}

    def topic(self, topic: str) -> TopicInstruments:
        """``records_produced``, ``records_delivered`` and ``delivery_latency`` of ``topic``."""
        found = self._topics.get(topic)
        if found is None:
            found = TopicInstruments(
                self.records_produced.labels(topic),
                self.records_delivered.labels(topic),
                self.delivery_latency.labels(topic),
            )
            self._topics[topic] = found
        return found
