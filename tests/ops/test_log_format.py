"""Process-wide logging set-up keeps library chatter, and what it would leak, out."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from connector.app import Connector
from connector.cli import main
from connector.dev import dev_settings
from connector.embedded.kafka import MockCluster
from connector.embedded.registry import RegistryServer
from connector.ops import log_format
from connector.settings import SchemaRegistrySettings, SecretRef
from connector.simulators.tplus_market import TplusMarketSimulator
from tests.running import metric_value, running_connector

LIBRARIES = ("websockets", "httpx", "httpcore", "httpx2", "httpcore2")


@pytest.fixture
def process_logging() -> Iterator[None]:
    """Lets a test call configure(); puts the root handlers and library levels back after."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, {n: logging.getLogger(n).level for n in LIBRARIES})
    yield
    handlers, level, levels = saved
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, library_level in levels.items():
        logging.getLogger(name).setLevel(library_level)


@pytest.mark.usefixtures("process_logging")
def test_even_at_debug_request_urls_and_frames_stay_out_of_the_log() -> None:
    log_format.configure("DEBUG", json_format=True)
    assert logging.getLogger().level == logging.DEBUG
    # httpx and httpx2 print every request URL at INFO, and venue URLs carry account numbers.
    for name in ("httpx", "httpx2"):
        assert logging.getLogger(name).getEffectiveLevel() == logging.WARNING
    for name in ("websockets", "httpcore", "httpcore2"):
        assert logging.getLogger(name).getEffectiveLevel() == logging.INFO
    log_format.configure("ERROR", json_format=False)
    assert logging.getLogger("httpx2").getEffectiveLevel() == logging.ERROR


@pytest.mark.usefixtures("process_logging")
async def test_no_secret_in_any_log_line_at_debug_with_a_userinfo_url_configured(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    user, password = "svc-registry", "Pw-7f3e-d41d-secret"
    basic = base64.b64encode(f"{user}:{password}".encode()).decode()
    log_format.configure("DEBUG", json_format=True)
    config = tmp_path / "userinfo.yaml"
    config.write_text(f"schema_registry:\n  url: https://{user}:{password}@127.0.0.1:8081\n")
    assert main(["validate", str(config)]) == 2
    refusal = capsys.readouterr().err
    assert "schema_registry: Value error, url: no user:password@ in the URL" in refusal

    # The same credentials written the supported way, through a whole run at DEBUG
    # against a registry that demands them.
    secret_file = tmp_path / "registry-password"
    secret_file.write_text(password)
    with MockCluster(brokers=1) as cluster, RegistryServer(authorization=f"Basic {basic}") as reg:
        sim = TplusMarketSimulator(["1"], seed=5, depth_interval_s=0.01, trade_interval_s=0.01)
        venue_url = await sim.start()
        try:
            settings = dev_settings(cluster.bootstrap_servers, reg.start(), venue_url, ["1"], 0)
            registry = SchemaRegistrySettings(
                url=reg.url, username=user, password=SecretRef(file=secret_file)
            )
            settings = settings.model_copy(update={"schema_registry": registry})
            for topic in [*settings.topics().values(), settings.kafka.dlq_topic]:
                cluster.create_topic(topic, partitions=1)
            connector = Connector(settings)
            async with running_connector(connector, expect_flushed=False):
                async with asyncio.timeout(30):
                    while True:
                        delivered = metric_value(
                            connector, "connector_records_delivered_total", topic="tplus.trades"
                        )
                        if delivered >= 20:
                            break
                        await asyncio.sleep(0.05)
        finally:
            await sim.stop()
    lines = (refusal + capsys.readouterr().err).splitlines()
    assert sum('"level": "DEBUG"' in line for line in lines) >= 10, len(lines)
    for line in lines:
        assert password not in line and basic not in line, line
