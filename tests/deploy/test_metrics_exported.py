"""The connector on the embedded stack exports every metric the alerts and dashboard use.

A scrape over HTTP, as Prometheus does it: a metric that was renamed or never
registered would leave an alert silent and a panel empty without any error,
and a counter without a series until its first event would leave that event
unseen by ``increase()``. Every venue source runs, against its simulator.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from connector import __version__
from connector.app import Connector
from connector.dev import dev_settings
from connector.embedded.kafka import MockCluster
from connector.embedded.registry import RegistryServer
from connector.governance.catalog import STREAM_SCHEMAS
from connector.simulators import tastytrade as tastytrade_sim
from connector.simulators import tplus_oms as tplus_oms_sim
from connector.simulators.tplus_market import TplusMarketSimulator
from tests.deploy.artefacts import alert_exprs, dashboard_exprs
from tests.deploy.promql import counter_arguments, exposition_types, metric_names, series_names
from tests.running import running_connector

ASSETS = ["1"]
SCRAPE_SERIES = {"up"}
# Counters whose label values are known only at the event: the broker's error name. Their
# rules fire on a series that first appears above 0 instead (alerts.test.yaml feeds one).
OPEN_LABELS = {"connector_delivery_failures_total"}


@pytest.fixture
async def metrics_url() -> AsyncIterator[str]:
    with MockCluster(brokers=1) as cluster, RegistryServer() as registry:
        registry_url = registry.start()
        sim = TplusMarketSimulator(
            ASSETS, seed=3, depth_interval_s=0.01, trade_interval_s=0.01, kline_interval_s=0.05
        )
        venue_url = await sim.start()
        tastytrade = tastytrade_sim.TastytradeSimulator(
            tastytrade_sim.DEV_ACCOUNTS, seed=3, event_interval_s=0.5
        )
        oms = tplus_oms_sim.dev_simulator(seed=3)
        try:
            await tastytrade.start()
            await oms.start()
            settings = dev_settings(
                cluster.bootstrap_servers,
                registry_url,
                venue_url,
                ASSETS,
                0,
                tastytrade=tastytrade_sim.connector_section(tastytrade),
                tplus_oms=tplus_oms_sim.connector_section(oms),
            )
            for topic in [*settings.topics().values(), settings.kafka.dlq_topic]:
                cluster.create_topic(topic, partitions=1)
            environ = {
                **tastytrade_sim.connector_environ(tastytrade),
                **tplus_oms_sim.connector_environ(oms),
            }
            connector = Connector(settings, environ=environ)
            async with running_connector(connector, expect_flushed=False) as info:
                yield info.metrics_url
        finally:
            await oms.stop()
            await tastytrade.stop()
            await sim.stop()


def _samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [
        (s.name, s.labels, s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


async def _scrape_until_wired(http: httpx.AsyncClient, url: str) -> str:
    """The first scrape after every source is built: each venue has its connections' series."""
    while True:
        response = await http.get(url)
        assert response.status_code == 200
        venues = {
            labels["venue"]
            for name, labels, _ in _samples(response.text)
            if name == "connector_connection_up"
        }
        if venues == {"tplus", "tastytrade"}:
            return response.text
        # Sources are built right after on_started; scraping again is how Prometheus sees it.
        await asyncio.sleep(0.01)


async def _first_wired_scrape(url: str) -> list[tuple[str, dict[str, str], float]]:
    async with httpx.AsyncClient(timeout=10) as http:
        return _samples(await asyncio.wait_for(_scrape_until_wired(http, url), timeout=30))


async def test_a_fresh_scrape_has_a_series_for_every_counter_an_alert_or_panel_reads(
    metrics_url: str,
) -> None:
    samples = await _first_wired_scrape(metrics_url)
    sampled = {name for name, _, _ in samples}
    counters: set[str] = set()
    for expr in {**alert_exprs(), **dashboard_exprs()}.values():
        counters |= {c for c in counter_arguments(expr) if c.endswith("_total")}
    assert len(counters) >= 12
    missing = counters - OPEN_LABELS - sampled
    assert not missing, f"no series yet for {sorted(missing)}: a first event would go unseen"
    # Preset, not counted: events that cannot have happened yet are there at 0.
    rebuilds = [v for n, _, v in samples if n == "connector_producer_rebuilds_total"]
    assert rebuilds and all(v == 0 for v in rebuilds)
    dead = {labels["stream"] for n, labels, _ in samples if n == "connector_dlq_records_total"}
    assert {"tplus.depth", "tplus.user-trades", "tastytrade.positions"} <= dead


async def test_one_stream_vocabulary_build_info_process_metrics_and_no_created_series(
    metrics_url: str,
) -> None:
    samples = await _first_wired_scrape(metrics_url)
    assert not [n for n, _, _ in samples if n.endswith("_created")]
    [build] = [labels for n, labels, _ in samples if n == "connector_build_info"]
    assert build["version"] == __version__ and build["python"] and build["librdkafka"]
    names = {n for n, _, _ in samples}
    assert {"process_resident_memory_bytes", "process_cpu_seconds_total", "python_info"} <= names
    # Connection, lag, DLQ and baseline metrics name a stream the same way: by its name.
    streams = {
        name: {labels["stream"] for n, labels, _ in samples if n == name}
        for name in (
            "connector_connection_up",
            "connector_dlq_records_total",
            "connector_baseline_records_total",
            "connector_sequence_gaps_total",
        )
    }
    known = {*STREAM_SCHEMAS, "tastytrade.streamer"}
    assert all(values and values <= known for values in streams.values()), streams
    connections = streams["connector_connection_up"]
    assert {
        "tplus.depth",
        "tplus.orders",
        "tplus.user-trades",
        "tastytrade.streamer",
    } <= connections
    assert connections <= streams["connector_dlq_records_total"]


async def _scrape_until_traffic(http: httpx.AsyncClient, url: str) -> str:
    """Scrape until records were delivered and trades observed their venue lag."""
    wanted = ("connector_records_delivered_total", "connector_event_lag_seconds_count")
    while True:
        response = await http.get(url)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        # Some series are preset at 0 (the DLQ topic, quiet streams): any one above 0 will do.
        seen = {name for name, _, value in _samples(response.text) if value > 0}
        if set(wanted) <= seen:
            return response.text
        # Scraping again is the only way to observe the process from outside, as Prometheus
        # does; the caller bounds the wait.
        await asyncio.sleep(0.05)


async def test_every_metric_of_the_alerts_and_dashboard_is_exported(metrics_url: str) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        text = await asyncio.wait_for(_scrape_until_traffic(http, metrics_url), timeout=30)
    exported = series_names(exposition_types(text))
    sampled = {s.name for f in text_string_to_metric_families(text) for s in f.samples}
    # The traffic really flowed through the scrape: these carry samples, not only TYPE lines.
    assert {
        "connector_frames_received_total",
        "connector_records_delivered_total",
        "connector_connection_up",
        "connector_seconds_since_last_message",
        "connector_event_lag_seconds_bucket",
        "connector_delivery_latency_seconds_bucket",
        "connector_ready",
    } <= sampled

    used: set[str] = set()
    for where, expr in {**alert_exprs(), **dashboard_exprs()}.items():
        names = metric_names(expr) - SCRAPE_SERIES
        missing = names - set(exported)
        assert not missing, f"{where} uses {sorted(missing)}, which /metrics does not export"
        for name in counter_arguments(expr):
            assert exported[name] in {"counter", "histogram"}, f"{where}: rate() of a gauge"
        used |= names
    assert len(used) >= 15
