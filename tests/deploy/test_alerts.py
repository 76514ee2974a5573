"""The alert rules: valid, unit-tested by promtool, and each documented for the on-call."""

from __future__ import annotations

import re
import subprocess
from collections import defaultdict

import yaml

from tests.deploy.artefacts import ALERT_TESTS, ALERTS, INHIBIT, alert_rules, runbook_sections
from tests.deploy.promql import counter_arguments, output_labels

# Labels every connector series carries from its scrape target (the ServiceMonitor's).
TARGET_LABELS = {"job", "namespace", "connector", "pod", "instance"}


def _matched(matchers: list[str], labels: dict[str, set[str]]) -> set[str]:
    """The alert names a list of ``alertname=~"..."`` / ``alertname="..."`` matchers selects."""
    names = set(labels)
    for matcher in matchers:
        parsed = re.fullmatch(r'(\w+)\s*(=~|!~|=|!=)\s*"(.*)"', matcher)
        assert parsed, matcher
        key, op, value = parsed.groups()
        if key != "alertname":
            continue
        pattern = re.compile(value if "~" in op else re.escape(value))
        keep = {n for n in names if pattern.fullmatch(n)}
        names = keep if not op.startswith("!") else names - keep
    return names


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


def test_every_alert_tells_the_on_call_what_and_where_to_read_on() -> None:
    for rule in alert_rules():
        name = rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        annotations = rule["annotations"]
        assert set(annotations) == {"summary", "description", "runbook_url"}, name
        assert all(len(text) > 20 for text in annotations.values()), name
        assert annotations["runbook_url"] == f"docs/runbook.md#{name.lower()}", name
        # A pod IP means nothing to the on-call: name the connector and its pod.
        assert "instance" not in annotations["summary"] + annotations["description"], name


def test_every_alert_has_a_runbook_section() -> None:
    sections = runbook_sections()
    names = {rule["alert"] for rule in alert_rules()} | {"ConnectorAbsent"}
    assert names <= set(sections), sorted(names - set(sections))
    for name in names:
        assert len(sections[name]) > 200, f"{name}: the runbook section says too little"


def test_every_summary_names_the_connector_and_its_pod() -> None:
    for rule in alert_rules():
        if rule["alert"] == "ConnectorTargetsMissing":
            continue  # no target at all, so no connector to name
        summary = rule["annotations"]["summary"]
        assert "$labels.connector" in summary and "$labels.pod" in summary, rule["alert"]
        assert {"connector", "pod"} <= output_labels(rule["expr"], TARGET_LABELS), rule["alert"]


def test_counter_alerts_fire_on_a_series_that_first_appears_above_zero() -> None:
    """Each counter rule also sees a new series, and its tests feed one as `_ _ n...`."""
    doc = yaml.safe_load(ALERT_TESTS.read_text(encoding="utf-8"))
    for rule in alert_rules():
        counters = {c for c in counter_arguments(rule["expr"]) if c.endswith("_total")}
        for counter in counters:
            assert f"{counter} unless {counter} offset" in " ".join(rule["expr"].split())
            new_series_fires = any(
                check["alertname"] == rule["alert"] and check["exp_alerts"]
                for test in doc["tests"]
                if any(
                    s["series"].startswith(counter + "{") and str(s["values"]).startswith("_")
                    for s in test["input_series"]
                )
                for check in test["alert_rule_test"]
            )
            assert new_series_fires, f"{rule['alert']}: no firing case for a new {counter}"


def test_the_inhibition_example_matches_the_alerts_it_names() -> None:
    """Every rule of deploy/alertmanager/alertmanager.yaml names real alerts and shared labels."""
    labels = {
        rule["alert"]: output_labels(rule["expr"], TARGET_LABELS) | set(rule["labels"])
        for rule in alert_rules()
    }
    labels["ConnectorAbsent"] = {"namespace", "connector", "deployment", "severity"}
    doc = yaml.safe_load(INHIBIT.read_text(encoding="utf-8"))
    assert len(doc["inhibit_rules"]) >= 5
    for inhibit in doc["inhibit_rules"]:
        sources = _matched(inhibit["source_matchers"], labels)
        targets = _matched(inhibit["target_matchers"], labels)
        assert sources and targets, inhibit
        assert not sources & targets, f"{sorted(sources & targets)} would inhibit themselves"
        for name in sources | targets:
            missing = set(inhibit.get("equal", [])) - labels[name]
            assert not missing, f"{name} has no {sorted(missing)} label to be equal on"
