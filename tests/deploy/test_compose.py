"""deploy/compose.yaml: no Docker engine here, so its parts are checked one by one."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from connector.settings import load_settings
from tests.deploy.artefacts import ALERTS, COMPOSE, DEPLOY, PROMETHEUS_CONFIG


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return data


def _services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = _compose()["services"]
    return services


def _mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path → host file of a service's bind mounts (relative to deploy/)."""
    out: dict[str, Path] = {}
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        out[target] = (DEPLOY / source).resolve()
    return out


def test_the_stack_has_its_five_services() -> None:
    assert set(_services()) == {"kafka", "schema-registry", "tplus-sim", "connector", "prometheus"}


def test_kafka_is_a_single_kraft_node_advertising_itself_to_the_other_containers() -> None:
    env = _services()["kafka"]["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == 1


def test_images_are_pinned_and_ports_bind_to_loopback() -> None:
    for name, service in _services().items():
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), name
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"


def test_connector_runs_hardened_from_the_repository_image() -> None:
    connector = _services()["connector"]
    assert connector["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
    assert (DEPLOY.parent / connector["build"]["dockerfile"]).is_file()
    assert connector["read_only"] is True
    assert connector["tmpfs"] == ["/tmp"]
    assert connector["cap_drop"] == ["ALL"]
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    assert f"USER {connector['user']}" in dockerfile
    depends = connector["depends_on"]
    assert {name: d["condition"] for name, d in depends.items()} == {
        "kafka": "service_healthy",
        "schema-registry": "service_healthy",
        "tplus-sim": "service_healthy",
    }


def test_connector_configuration_is_valid_and_points_at_the_compose_services() -> None:
    services = _services()
    config_path = _mounts(services["connector"])["/etc/connector/connector.yaml"]
    assert services["connector"]["command"] == ["run", "/etc/connector/connector.yaml"]
    settings = load_settings(config_path, {})
    assert settings.kafka.bootstrap_servers == "kafka:9092"
    assert settings.kafka.create_topics and settings.kafka.topic_replication == 1
    assert settings.schema_registry.url == "http://schema-registry:8081"
    sim_port = services["tplus-sim"]["environment"]["SIM_PORT"]
    assert settings.tplus.market_data.base_url == f"http://tplus-sim:{sim_port}"
    assert services["connector"]["ports"] == [f"127.0.0.1:{settings.metrics.port}:9108"]
    assert settings.metrics.host == "0.0.0.0"
    grace = int(services["connector"]["stop_grace_period"].removesuffix("s"))
    assert grace > settings.shutdown_grace_s


def test_prometheus_loads_the_alerts_and_scrapes_the_connector_as_job_connector(
    promtool: str,
) -> None:
    mounts = _mounts(_services()["prometheus"])
    assert mounts["/etc/prometheus/prometheus.yml"] == PROMETHEUS_CONFIG.resolve()
    assert mounts["/etc/prometheus/alerts.yaml"] == ALERTS.resolve()
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))
    assert config["rule_files"] == [ALERTS.name]
    [job] = config["scrape_configs"]
    assert job["job_name"] == "connector"
    # The labels the chart's ServiceMonitor gives a target, which alert summaries name.
    name = load_settings(DEPLOY / "compose" / "connector.yaml", {}).name
    assert job["static_configs"] == [
        {"targets": ["connector:9108"], "labels": {"connector": name, "pod": "connector"}}
    ]
    result = subprocess.run(
        [promtool, "check", "config", str(PROMETHEUS_CONFIG)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout


async def test_simulator_script_serves_the_venue_and_stops_on_sigterm() -> None:
    sim = _services()["tplus-sim"]
    script = _mounts(sim)[sim["entrypoint"][1]]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        env={"SIM_HOST": "127.0.0.1", "SIM_PORT": "0", "SIM_ASSETS": "7"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), timeout=30)).decode()
        match = re.fullmatch(r"TPLUS_MDS_URL=(http://127\.0\.0\.1:\d+)\n", line)
        assert match, line
        async with httpx.AsyncClient(base_url=match.group(1), timeout=10) as http:
            snapshot = await http.get("/marketdepth/7")
            missing = await http.get("/marketdepth/1")
        assert snapshot.status_code == 200 and "sequence_number" in snapshot.text
        assert missing.status_code == 404
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), timeout=30) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                await stream.read()


@pytest.mark.parametrize("service", ["kafka", "schema-registry", "tplus-sim"])
def test_services_the_connector_waits_for_have_healthchecks(service: str) -> None:
    check = _services()[service]["healthcheck"]["test"]
    assert check[0] in {"CMD", "CMD-SHELL"} and len(check) > 1
