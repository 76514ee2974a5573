"""Production registration: ``schemas register`` at deploy, lookup-only pinning at start-up.

Run against the real HTTP registry, whose request log shows exactly what each path
sends, so the tests can tell registrations from lookups and see the normalize flag.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from connector.app import Connector, RuntimeInfo, StartupError
from connector.cli import main
from connector.delivery.serde import AvroEncoder, pin_schemas, subject_for
from connector.embedded.kafka import MockCluster
from connector.embedded.registry import RegistryServer
from connector.governance import catalog
from connector.settings import Settings, parse_settings

REQUEST = re.compile(r'"(GET|POST|PUT|DELETE) (/\S*) HTTP/1\.1"')


@pytest.fixture
def registry() -> Iterator[RegistryServer]:
    with RegistryServer() as server:
        yield server


@pytest.fixture
def requests(caplog: pytest.LogCaptureFixture) -> Iterator[list[tuple[str, str]]]:
    """(method, path with query) of every request the registry serves, as it serves them."""
    caplog.set_level(logging.DEBUG, logger="connector.embedded.registry")
    seen: list[tuple[str, str]] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            found = REQUEST.search(record.getMessage())
            if found:
                seen.append((found.group(1), found.group(2)))

    handler = Collect()
    logging.getLogger("connector.embedded.registry").addHandler(handler)
    yield seen
    logging.getLogger("connector.embedded.registry").removeHandler(handler)


def _settings(bootstrap: str, registry_url: str, startup_timeout_s: float = 60.0) -> Settings:
    return parse_settings(
        {
            "kafka": {"bootstrap_servers": bootstrap},
            "schema_registry": {
                "url": registry_url,
                "auto_register": False,
                "startup_timeout_s": startup_timeout_s,
            },
            "metrics": {"host": "127.0.0.1", "port": 0},
            "tplus": {"market_data": {"base_url": "http://127.0.0.1:9", "assets": ["1"]}},
        }
    )


def _schema_posts(requests: list[tuple[str, str]]) -> list[str]:
    return [path for method, path in requests if method == "POST" and "/subjects/" in path]


def test_every_path_sends_schemas_with_the_same_normalize_flag(
    registry: RegistryServer, requests: list[tuple[str, str]]
) -> None:
    assert main(["schemas", "register", "--registry", registry.url]) == 0
    topic = "tplus.trades"
    text = catalog.schema_text(topic)
    value: dict[str, Any] = {
        "asset_id": "1",
        "trade_id": 1,
        "order_id": "",
        "price": "1.5",
        "quantity": "2",
        "timestamp_ns": 1,
        "buyer_is_maker": False,
        "status": "Confirmed",
        "received_ns": 2,
    }
    ids = set()
    for auto_register in (False, True):
        # Fresh clients, so nothing is answered from a cache.
        pin_client = SchemaRegistryClient({"url": registry.url})
        encoder_client = SchemaRegistryClient({"url": registry.url})
        try:
            pinned = pin_schemas(pin_client, {topic: text}, auto_register=auto_register)
            encoded = AvroEncoder(encoder_client, topic, text, auto_register=auto_register)(value)
        finally:
            pin_client.close()
            encoder_client.close()
        ids.add(pinned[topic])
        ids.add(int.from_bytes(encoded[1:5], "big"))
    assert len(ids) == 1  # one schema, one id, whichever path asked
    posts = _schema_posts(requests)
    lookups = [p for p in posts if "/versions" not in p]
    registrations = [p for p in posts if "/versions" in p]
    assert len(lookups) == 2 and len(registrations) > 2
    assert all("normalize=True" in p for p in posts), posts


async def test_lookup_only_start_up_after_a_deploy_registration(
    registry: RegistryServer, requests: list[tuple[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["schemas", "register", "--registry", registry.url]) == 0
    printed = dict(line.split(" → ") for line in capsys.readouterr().out.splitlines())
    registered_before = len(_schema_posts(requests))
    with MockCluster() as cluster:
        settings = _settings(cluster.bootstrap_servers, registry.url)
        stop = asyncio.Event()
        started: asyncio.Future[RuntimeInfo] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(Connector(settings).run(stop, on_started=started.set_result))
        info = await asyncio.wait_for(started, timeout=20)
        stop.set()
        assert await asyncio.wait_for(task, timeout=20) == 0
    assert {subject_for(t): i for t, i in info.schema_ids.items()} == {
        subject_for(t): int(printed[subject_for(t)]) for t in settings.topics().values()
    }
    at_start_up = _schema_posts(requests)[registered_before:]
    assert at_start_up and not [p for p in at_start_up if "/versions" in p], at_start_up


async def test_start_up_refuses_a_schema_the_registry_holds_another_version_of(
    registry: RegistryServer,
) -> None:
    # The registry holds a newer Trade (one optional field more) than this connector's.
    newer = json.loads(catalog.schema_text("tplus.trades"))
    newer["fields"].append(
        {"name": "venue", "type": ["null", "string"], "default": None, "doc": "newer"}
    )
    subject = subject_for("tplus.trades")
    registry.store.register(subject, json.dumps(newer))
    for stream, topic in _settings("127.0.0.1:9", registry.url).topics().items():
        if topic != "tplus.trades":
            registry.store.register(subject_for(topic), catalog.schema_text(stream))
    before = {s: registry.store.versions(s) for s in registry.store.subjects()}

    # Pinned mode retries a lookup that finds nothing until the start-up budget is spent.
    connector = Connector(_settings("127.0.0.1:9", registry.url, startup_timeout_s=0.5))
    with pytest.raises(StartupError) as refused:
        await connector.run(asyncio.Event())
    message = str(refused.value)
    assert f"would not find the schema of subject {subject!r}" in message
    assert "error 40403" in message and "connector schemas register" in message
    assert {s: registry.store.versions(s) for s in registry.store.subjects()} == before
    assert not connector.health.ready()
