"""The command line: exit codes and messages a person can act on."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.cli import main

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
