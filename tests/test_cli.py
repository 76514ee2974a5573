"""The command line: exit codes and messages a person can act on."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
from pathlib import Path

import pytest

from connector import __version__
from connector.cli import main
from connector.embedded.kafka import MockCluster
from connector.embedded.registry import RegistryServer
from tests.running import log_until, run_process

EXAMPLE = Path(__file__).resolve().parent.parent / "deploy" / "connector.example.yaml"


def test_validate_accepts_the_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "valid" in out and "tplus.depth" in out


def test_validate_names_the_bad_key_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kafka:\n  bootstrap_servers: x:9092\n  acks: all\nmetrics:\n  port: 99999\n")
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "kafka.acks: unknown key" in err
    assert "metrics.port" in err


def test_run_with_a_bad_config_exits_2_before_connecting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("tplus:\n  market_data:\n    asets: ['1']\n")
    assert main(["run", str(bad)]) == 2
    assert "tplus.market_data.asets: unknown key" in capsys.readouterr().err


def test_usage_errors_exit_2() -> None:
    with pytest.raises(SystemExit) as info:
        main(["nonsense"])
    assert info.value.code == 2


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize(
    "argv",
    [
        ["--version"],
        ["run", "--version"],
        ["validate", "--version"],
        ["dev", "--version"],
        ["tail", "--version"],
        ["schemas", "check", "--version"],
        ["config", "example", "--version"],
    ],
)
def test_version_is_answered_everywhere(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"connector {__version__}"


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["dev", "--assets", ""], "--assets"),
        (["dev", "--assets", " , "], "--assets"),
        (["dev", "--fault-interval", "-5"], "--fault-interval"),
        (["dev", "--metrics-port", "70000"], "--metrics-port"),
        (["tail", "t", "--idle-timeout", "soon"], "--idle-timeout"),
    ],
)
def test_bad_options_are_one_line_naming_the_option_and_exit_2(
    argv: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert named in _one_line(capsys.readouterr().err)


def test_validate_reports_every_secret_that_cannot_be_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CONNECTOR_TEST_UNSET", raising=False)
    config = tmp_path / "c.yaml"
    config.write_text(
        "tastytrade:\n  account_streamer:\n    enabled: true\n    accounts: [5WT00001]\n"
        "    auth:\n"
        f"      refresh_token: {{file: {tmp_path / 'absent'}}}\n"
        "      client_secret: {env: CONNECTOR_TEST_UNSET}\n"
        # A disabled section's references are not needed, so not checked.
        "tplus:\n  oms:\n    enabled: false\n    accounts:\n"
        "      - {name: a, private_key: {env: CONNECTOR_TEST_UNSET}}\n"
    )
    assert main(["validate", str(config)]) == 2
    err = capsys.readouterr().err
    key = "tastytrade.account_streamer.auth.refresh_token"
    assert f"{key}: cannot read secret file {tmp_path / 'absent'}" in err
    assert (
        "tastytrade.account_streamer.auth.client_secret: environment variable "
        "CONNECTOR_TEST_UNSET is not set or empty" in err
    )
    assert "tplus.oms" not in err and "Traceback" not in err


def test_an_override_typo_is_blamed_on_the_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONNECTOR__KAFKA__BOOTSTRAP", "broker:9092")
    assert main(["validate", str(EXAMPLE)]) == 2
    err = capsys.readouterr().err
    assert "invalid configuration in the environment:" in err
    assert (
        "kafka.bootstrap: unknown key (set by environment variable CONNECTOR__KAFKA__BOOTSTRAP)"
        in err
    )
    assert str(EXAMPLE) not in err


def _taken_port() -> socket.socket:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    return taken


def test_run_with_the_metrics_port_taken_is_one_line_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with _taken_port() as taken:
        port = taken.getsockname()[1]
        config = tmp_path / "c.yaml"
        config.write_text(f"metrics:\n  host: 127.0.0.1\n  port: {port}\n")
        assert main(["run", str(config)]) == 1
    line = _one_line(capsys.readouterr().err)
    assert f"cannot serve metrics on 127.0.0.1:{port} (metrics.port)" in line


def test_dev_with_the_metrics_port_taken_is_one_line_and_exit_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with _taken_port() as taken:
        port = taken.getsockname()[1]
        code = main(["dev", "--metrics-port", str(port), "--duration", "30", "--env-file", ""])
    assert code == 1
    err = capsys.readouterr().err
    failure = [line for line in err.splitlines() if "start-up failed" in line]
    assert "Traceback" not in err and len(failure) == 1
    assert f"cannot serve metrics on 127.0.0.1:{port} (metrics.port)" in failure[0]


async def test_run_logs_a_status_line_every_interval(tmp_path: Path) -> None:
    with MockCluster() as cluster, RegistryServer() as registry:
        config = tmp_path / "c.yaml"
        config.write_text(
            f"kafka: {{bootstrap_servers: '{cluster.bootstrap_servers}'}}\n"
            f"schema_registry: {{url: '{registry.url}'}}\n"
            "metrics: {host: 127.0.0.1, port: 0}\n"
            "logging: {status_interval_s: 0.5}\n"
            # No venue: the status says not ready.
            "tplus: {market_data: {base_url: 'http://127.0.0.1:9'}}\n"
        )
        proc = await run_process(config)
        try:
            entry = (await log_until(proc, "status"))[-1]
        finally:
            proc.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(proc.wait(), timeout=60)
    assert code == 0
    assert entry["ready"] is False and isinstance(entry["elapsed_s"], float)
    assert entry["elapsed_s"] > 0
    assert {"events_per_s", "delivered", "dlq", "reconnects", "queued"} <= set(entry)


async def test_run_without_brokers_exits_1_with_one_line_at_the_start_up_timeout(
    tmp_path: Path,
) -> None:
    with RegistryServer() as registry, socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        bootstrap = f"127.0.0.1:{unused.getsockname()[1]}"
        config = tmp_path / "c.yaml"
        config.write_text(
            f"kafka: {{bootstrap_servers: '{bootstrap}', startup_timeout_s: 3}}\n"
            f"schema_registry: {{url: '{registry.url}'}}\n"
            "metrics: {host: 127.0.0.1, port: 0}\n"
        )
        proc = await run_process(config)
        _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 1
    entries = [json.loads(line) for line in err.decode().splitlines()]
    assert "Traceback" not in err.decode()
    errors = [e["msg"] for e in entries if e["logger"] == "connector.cli"]
    assert errors == [
        f"start-up failed: no Kafka broker at {bootstrap} answered within 3 s "
        "(kafka.bootstrap_servers, kafka.startup_timeout_s)"
    ]
    # librdkafka tries to connect many times a second; its lines are folded.
    assert len([e for e in entries if e["logger"] == "librdkafka"]) <= 6
