"""The alert rules: valid, unit-tested by promtool, and each documented for the on-call."""

from __future__ import annotations

import subprocess
from collections import defaultdict

import yaml

from tests.deploy.artefacts import ALERT_TESTS, ALERTS, alert_rules


def _promtool(promtool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *args],
        cwd=ALERTS.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_rules_pass_promtool_check(promtool: str) -> None:
    result = _promtool(promtool, "check", "rules", ALERTS.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


def test_rules_pass_their_promtool_unit_tests(promtool: str) -> None:
    result = _promtool(promtool, "test", "rules", ALERT_TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_firing_and_a_silent_case() -> None:
    doc = yaml.safe_load(ALERT_TESTS.read_text(encoding="utf-8"))
    assert doc["rule_files"] == [ALERTS.name]
    cases: dict[str, set[str]] = defaultdict(set)
    for test in doc["tests"]:
        for check in test["alert_rule_test"]:
            cases[check["alertname"]].add("fires" if check.get("exp_alerts") else "silent")
    names = {rule["alert"] for rule in alert_rules()}
    assert set(cases) == names
    assert {name: cases[name] for name in names} == {name: {"fires", "silent"} for name in names}


def test_the_alerts_a_bridge_needs_are_all_there() -> None:
    names = {rule["alert"] for rule in alert_rules()}
    assert {
        "ConnectorDown",
        "ConnectorStreamDisconnected",
        "ConnectorReconnectStorm",
        "ConnectorSequenceGaps",
        "ConnectorStreamStale",
        "ConnectorEventLagHigh",
        "ConnectorDeliveryFailures",
        "ConnectorProducerQueueFilling",
        "ConnectorDeadLetters",
        "ConnectorSchemaRegistryErrors",
        "ConnectorTokenNearExpiry",
    } <= names


def test_every_alert_tells_the_on_call_what_and_what_to_do() -> None:
    for rule in alert_rules():
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        annotations = rule["annotations"]
        assert set(annotations) == {"summary", "description", "runbook"}, rule["alert"]
        assert all(len(text) > 20 for text in annotations.values()), rule["alert"]
