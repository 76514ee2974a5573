"""The connector on the embedded stack exports every metric the alerts and dashboard use.

A scrape over HTTP, as Prometheus does it: a metric that was renamed or never
registered would leave an alert silent and a panel empty without any error.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from connector.app import Connector
from connector.dev import dev_settings
from connector.embedded.kafka import MockCluster
from connector.embedded.registry import RegistryServer
from connector.simulators.tplus_market import TplusMarketSimulator
from tests.deploy.artefacts import alert_exprs, dashboard_exprs
from tests.deploy.promql import counter_arguments, exposition_types, metric_names, series_names
from tests.running import running_connector

ASSETS = ["1"]
SCRAPE_SERIES = {"up"}


@pytest.fixture
async def metrics_url() -> AsyncIterator[str]:
    with MockCluster(brokers=1) as cluster, RegistryServer() as registry:
        registry_url = registry.start()
        sim = TplusMarketSimulator(
            ASSETS, seed=3, depth_interval_s=0.01, trade_interval_s=0.01, kline_interval_s=0.05
        )
        venue_url = await sim.start()
        try:
            settings = dev_settings(cluster.bootstrap_servers, registry_url, venue_url, ASSETS, 0)
            for topic in [*settings.topics().values(), settings.kafka.dlq_topic]:
                cluster.create_topic(topic, partitions=1)
            async with running_connector(Connector(settings), expect_flushed=False) as info:
                yield info.metrics_url
        finally:
            await sim.stop()


async def _scrape_until_traffic(http: httpx.AsyncClient, url: str) -> str:
    """Scrape until records were delivered and trades observed their venue lag."""
    wanted = ("connector_records_delivered_total", "connector_event_lag_seconds_count")
    while True:
        response = await http.get(url)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        samples = {
            s.name: s.value
            for family in text_string_to_metric_families(response.text)
            for s in family.samples
            if s.name in wanted
        }
        if all(samples.get(name, 0) > 0 for name in wanted):
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
