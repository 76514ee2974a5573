"""Start-up against real peers: schemas pinned first, clear failures, optional topic creation."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

from connector.app import Connector, RuntimeInfo, StartupError, StoppedError
from connector.delivery.serde import SchemaSetupError
from connector.delivery.sink import SinkError
from connector.embedded.kafka import MockCluster
from connector.embedded.registry import RegistryServer
from connector.governance import catalog
from connector.ops.health import Condition
from connector.settings import Settings, parse_settings
from connector.sources.context import Service, SourceContext
from tests.fakes import FlakyService


@pytest.fixture
def cluster() -> Iterator[MockCluster]:
    with MockCluster() as c:
        yield c


@pytest.fixture
def registry() -> Iterator[RegistryServer]:
    with RegistryServer() as r:
        r.start()
        yield r


def _settings(cluster: MockCluster, registry_url: str, **overrides: Any) -> Settings:
    data: dict[str, Any] = {
        "name": "t",
        "kafka": {"bootstrap_servers": cluster.bootstrap_servers},
        "schema_registry": {"url": registry_url, "startup_timeout_s": 20},
        "metrics": {"host": "127.0.0.1", "port": 0},
        # No venue is needed to test start-up: point it at a closed port.
        "tplus": {
            "market_data": {
                "base_url": "http://127.0.0.1:9",
                "assets": ["1"],
                "websocket": {"backoff": {"initial_s": 5, "max_s": 5}},
            }
        },
    }
    for key, value in overrides.items():
        data[key] = {**data.get(key, {}), **value}
    return parse_settings(data)


def _incompatible_trade_schema() -> str:
    schema = json.loads(catalog.schema_text("tplus.trades"))
    schema["fields"] = [f for f in schema["fields"] if f["name"] != "price"]
    schema["fields"].append({"name": "venue", "type": "string", "doc": "no default"})
    return json.dumps(schema)


async def test_a_schema_the_registry_rejects_stops_start_up(
    cluster: MockCluster, registry: RegistryServer
) -> None:
    client = SchemaRegistryClient({"url": registry.url})
    client.register_schema("tplus.trades-value", Schema(_incompatible_trade_schema(), "AVRO"))
    client.close()
    connector = Connector(_settings(cluster, registry.url))
    with pytest.raises(SchemaSetupError) as info:
        await connector.run(asyncio.Event())
    message = str(info.value)
    assert "tplus.trades-value" in message and "HTTP 409" in message


async def test_lookup_mode_refuses_unregistered_schemas_and_pins_registered_ones(
    cluster: MockCluster, registry: RegistryServer
) -> None:
    settings = _settings(cluster, registry.url, schema_registry={"auto_register": False})
    with pytest.raises(SchemaSetupError, match="would not find the schema of subject"):
        await Connector(settings).run(asyncio.Event())

    client = SchemaRegistryClient({"url": registry.url})
    expected = {
        topic: client.register_schema(f"{topic}-value", Schema(catalog.schema_text(s), "AVRO"))
        for s, topic in settings.topics().items()
    }
    client.close()
    stop = asyncio.Event()
    started: asyncio.Future[RuntimeInfo] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(Connector(settings).run(stop, on_started=started.set_result))
    info = await asyncio.wait_for(started, timeout=20)
    assert info.schema_ids == expected
    stop.set()
    assert await asyncio.wait_for(task, timeout=20) == 0


async def test_unreachable_registry_is_retried_and_shown_in_readiness(
    cluster: MockCluster,
) -> None:
    registry = RegistryServer()
    url = registry.start()
    registry.stop()
    connector = Connector(_settings(cluster, url))
    loop = asyncio.get_running_loop()
    unreachable = asyncio.Event()

    def on_change(name: str, condition: Condition) -> None:
        if name == "schemas" and "unreachable" in condition.detail:
            loop.call_soon_threadsafe(unreachable.set)

    connector.health.add_listener(on_change)
    stop = asyncio.Event()
    started: asyncio.Future[RuntimeInfo] = loop.create_future()
    task = asyncio.create_task(connector.run(stop, on_started=started.set_result))
    try:
        await asyncio.wait_for(unreachable.wait(), timeout=20)
        errors = "connector_schema_registry_errors_total"
        assert connector.registry.get_sample_value(errors, {"operation": "startup"})
        condition = connector.health.snapshot()["schemas"]
        assert not condition.ok and "unreachable" in condition.detail
        assert not started.done()
        registry.start()
        info = await asyncio.wait_for(started, timeout=20)
        assert set(info.schema_ids) == set(connector.settings.topics().values())
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=20)
        registry.stop()


async def test_registry_outage_beyond_the_start_up_budget_fails_clearly(
    cluster: MockCluster,
) -> None:
    registry = RegistryServer()
    url = registry.start()
    registry.stop()
    settings = _settings(cluster, url, schema_registry={"startup_timeout_s": 0.5})
    with pytest.raises(StartupError, match="unreachable for"):
        await Connector(settings).run(asyncio.Event())


async def test_topic_creation_tolerates_a_cluster_that_cannot_create_topics(
    cluster: MockCluster, registry: RegistryServer
) -> None:
    settings = _settings(cluster, registry.url, kafka={"create_topics": True})
    stop = asyncio.Event()
    started: asyncio.Future[RuntimeInfo] = asyncio.get_running_loop().create_future()
    connector = Connector(settings)
    task = asyncio.create_task(connector.run(stop, on_started=started.set_result))
    info = await asyncio.wait_for(started, timeout=30)
    async with httpx.AsyncClient() as http:
        body = (await http.get(info.metrics_url)).text
        ready = await http.get(info.metrics_url.replace("/metrics", "/readyz"))
    assert "connector_records_produced_total" in body or "connector_frames_received" in body
    assert ready.status_code == 503  # the venue is unreachable
    assert ready.json()["conditions"]["tplus.depth.1"]["ok"] is False
    assert ready.json()["conditions"]["kafka"]["ok"] is True
    stop.set()
    assert await asyncio.wait_for(task, timeout=20) == 0


class _WithExtraService(Connector):
    def __init__(self, settings: Settings, extra: FlakyService) -> None:
        super().__init__(settings)
        self.extra = extra

    def _services(self, ctx: SourceContext) -> list[Service]:
        return [*super()._services(ctx), self.extra]


async def test_a_source_task_that_dies_is_restarted_and_the_process_runs_on(
    cluster: MockCluster, registry: RegistryServer
) -> None:
    crashing = FlakyService("crashing", 2, RuntimeError("a bug"))
    connector = _WithExtraService(_settings(cluster, registry.url), crashing)
    stop = asyncio.Event()
    task = asyncio.create_task(connector.run(stop))
    await asyncio.wait_for(crashing.running.wait(), timeout=30)
    restarts = connector.registry.get_sample_value(
        "connector_task_restarts_total",
        {"venue": "tplus", "stream": "crashing", "reason": "RuntimeError"},
    )
    assert restarts == 2 and not task.done()
    stop.set()
    assert await asyncio.wait_for(task, timeout=20) == 0


async def test_an_unrecoverable_sink_error_stops_the_process_with_the_reason(
    cluster: MockCluster, registry: RegistryServer
) -> None:
    crashing = FlakyService("crashing", 1, SinkError("the sink is closed"))
    connector = _WithExtraService(_settings(cluster, registry.url), crashing)
    with pytest.raises(StoppedError) as caught:
        await asyncio.wait_for(connector.run(asyncio.Event()), timeout=30)
    assert str(caught.value) == "tplus.crashing.1 cannot go on: SinkError: the sink is closed"
