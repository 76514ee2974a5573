"""Start-up against real peers: schemas pinned first, clear failures, optional topic creation."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable, Iterator
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
        "spool": {"enabled": False},  # start-up only; the spool has its own tests
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
    brief = settings.model_copy(
        update={
            "schema_registry": settings.schema_registry.model_copy(
                update={"startup_timeout_s": 0.5}
            )
        }
    )
    with pytest.raises(StartupError, match="would not find the schema of subject") as refused:
        await Connector(brief).run(asyncio.Event())
    assert "schema_registry.startup_timeout_s" in str(refused.value)

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
    with pytest.raises(StartupError) as failed:
        await Connector(settings).run(asyncio.Event())
    message = str(failed.value)
    assert f"schema registry at {url} not usable for 0.5 s" in message
    assert "unreachable (ConnectError)" in message


async def _started_after(
    connector: Connector, seen: Callable[[str, Condition], bool]
) -> tuple[asyncio.Event, asyncio.Task[int], asyncio.Future[RuntimeInfo]]:
    """Start ``connector``; return once a health change satisfied ``seen``."""
    loop = asyncio.get_running_loop()
    matched = asyncio.Event()

    def on_change(name: str, condition: Condition) -> None:
        if seen(name, condition):
            loop.call_soon_threadsafe(matched.set)

    connector.health.add_listener(on_change)
    stop = asyncio.Event()
    started: asyncio.Future[RuntimeInfo] = loop.create_future()
    task = asyncio.create_task(connector.run(stop, on_started=started.set_result))
    await asyncio.wait_for(matched.wait(), timeout=20)
    return stop, task, started


async def test_pinned_mode_waits_for_schemas_registered_after_start_up(
    cluster: MockCluster, registry: RegistryServer
) -> None:
    settings = _settings(cluster, registry.url, schema_registry={"auto_register": False})
    connector = Connector(settings)
    stop, task, started = await _started_after(
        connector, lambda name, c: name == "schemas" and "error 40401" in c.detail
    )
    try:
        assert registry.url in connector.health.snapshot()["schemas"].detail
        assert not started.done()
        for stream, topic in settings.topics().items():
            registry.store.register(f"{topic}-value", catalog.schema_text(stream))
        info = await asyncio.wait_for(started, timeout=20)
        assert set(info.schema_ids) == set(settings.topics().values())
    finally:
        stop.set()
        assert await asyncio.wait_for(task, timeout=20) == 0


async def test_a_registry_answering_5xx_while_it_starts_is_retried_and_named(
    cluster: MockCluster, registry: RegistryServer, caplog: pytest.LogCaptureFixture
) -> None:
    # Karapace answers registrations 500/50003 for about 9 s after it starts; more
    # answers than the client retries by itself, so start-up has to retry.
    registry.fail_next("POST", 6, 500, 50003, "Error while forwarding the request")
    connector = Connector(_settings(cluster, registry.url))
    stop, task, started = await _started_after(
        connector, lambda name, c: name == "schemas" and "HTTP 500" in c.detail
    )
    try:
        detail = connector.health.snapshot()["schemas"].detail
        assert "unreachable" not in detail and "error 50003" in detail
        info = await asyncio.wait_for(started, timeout=20)
        assert set(info.schema_ids) == set(connector.settings.topics().values())
        retries = [
            r for r in caplog.records if r.getMessage() == "schema registry not usable; retrying"
        ]
        assert retries and all("HTTP 500" in str(getattr(r, "error", "")) for r in retries)
    finally:
        stop.set()
        assert await asyncio.wait_for(task, timeout=20) == 0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_kafka_unreachable_at_start_up_is_retried_then_fails_with_one_line(
    registry: RegistryServer,
) -> None:
    closed = f"127.0.0.1:{_free_port()}"
    metrics_port = _free_port()
    settings = parse_settings(
        {
            "kafka": {"bootstrap_servers": closed, "startup_timeout_s": 3},
            "schema_registry": {"url": registry.url},
            "metrics": {"host": "127.0.0.1", "port": metrics_port},
            "tplus": {"market_data": {"base_url": "http://127.0.0.1:9"}},
        }
    )
    connector = Connector(settings)
    details: list[str] = []
    connector.health.add_listener(
        lambda name, c: details.append(c.detail) if name == "kafka" else None
    )
    _, task, started = await _started_after(connector, lambda name, c: name == "kafka")
    async with httpx.AsyncClient() as http:
        ready = await http.get(f"http://127.0.0.1:{metrics_port}/readyz")
    assert ready.status_code == 503
    kafka = ready.json()["conditions"]["kafka"]
    assert not kafka["ok"] and closed in kafka["detail"]
    with pytest.raises(StartupError) as failed:
        await asyncio.wait_for(task, timeout=20)
    message = str(failed.value)
    assert "\n" not in message and closed in message and "kafka.startup_timeout_s" in message
    assert not started.done() and not connector.health.ready()
    assert f"no broker at {closed} answered (_TRANSPORT)" in details


async def test_a_taken_metrics_port_fails_start_up_naming_the_key(
    cluster: MockCluster, registry: RegistryServer
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = _settings(cluster, registry.url, metrics={"port": port})
        with pytest.raises(StartupError, match=f"127.0.0.1:{port} \\(metrics.port\\)"):
            await Connector(settings).run(asyncio.Event())


def test_the_books_topic_is_created_compacted_and_the_others_with_defaults(
    cluster: MockCluster, registry: RegistryServer
) -> None:
    renamed = {"tplus": {"market_data": {"topics": {"books": "risk.books"}}}}
    settings = _settings(cluster, registry.url, kafka={"topic_partitions": 4}, **renamed)
    names = [*settings.topics().values(), settings.kafka.dlq_topic]
    topics = {t.topic: t for t in Connector(settings).new_topics(names)}
    assert sorted(topics) == sorted(names) and "risk.books" in topics
    assert topics["risk.books"].config == {"cleanup.policy": "compact"}
    assert all(t.config == {} for name, t in topics.items() if name != "risk.books")
    assert {t.num_partitions for t in topics.values()} == {4}


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
