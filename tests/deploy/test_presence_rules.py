"""The chart's ConnectorAbsent rules: one per deployed connector, unit-tested by promtool.

The series are fed as kube-state-metrics and Prometheus write them: a
Deployment's ``kube_deployment_spec_replicas`` while it exists, and ``up`` for
each scrape target; a deleted Deployment or a pod that never got an address
simply has no series.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import helm_python
import pytest
import yaml

from tests.deploy.artefacts import CHART
from tests.deploy.rendered import NAMESPACE, load_values, presence_rules, render

SHARDED = CHART / "ci" / "sharded-values.yaml"
WATCHED = "tplus-depth-a"  # the connector each case takes away; the others keep running


def _rendered(chart: helm_python.Chart, **rule_values: Any) -> tuple[dict[str, Any], Any]:
    values = load_values(SHARDED)
    values["prometheusRule"] = {"enabled": True, **rule_values}
    return values, render(chart, values)


def _series(
    deployments: dict[str, str], gone: dict[str, dict[str, str | None]]
) -> list[dict[str, str]]:
    """``up`` and replicas per connector, running for 20 minutes unless ``gone`` says otherwise."""
    out = []
    for name, deployment in deployments.items():
        values = gone.get(name, {})
        replicas = values.get("replicas", "1x20")
        up = values.get("up", "1x20")
        if replicas is not None:
            out.append(
                {
                    "series": f'kube_deployment_spec_replicas{{namespace="{NAMESPACE}", '
                    f'deployment="{deployment}"}}',
                    "values": replicas,
                }
            )
        if up is not None:
            out.append(
                {
                    "series": f'up{{job="connector", namespace="{NAMESPACE}", connector="{name}", '
                    f'pod="{deployment}-6c9f-abcde"}}',
                    "values": up,
                }
            )
    return out


def _promtool_test(
    promtool: str, tmp_path: Path, rule: dict[str, Any], tests: list[dict[str, Any]]
) -> subprocess.CompletedProcess[str]:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rule["spec"]), encoding="utf-8")
    doc = {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests}
    (tmp_path / "rules.test.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    return subprocess.run(
        [promtool, "test", "rules", "rules.test.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _case(
    name: str,
    series: list[dict[str, str]],
    checks: list[tuple[str, dict[str, Any] | None]],
) -> dict[str, Any]:
    return {
        "name": name,
        "interval": "1m",
        "input_series": series,
        "alert_rule_test": [
            {
                "eval_time": at,
                "alertname": "ConnectorAbsent",
                "exp_alerts": []
                if rule is None
                else [{"exp_labels": rule["labels"], "exp_annotations": rule["annotations"]}],
            }
            for at, rule in checks
        ],
    }


def test_one_absence_rule_per_enabled_connector(chart: helm_python.Chart) -> None:
    values, rendered = _rendered(chart)
    rules = presence_rules(rendered)
    enabled = set(rendered.deployments())
    assert "tplus-spare" in values["connectors"] and "tplus-spare" not in enabled
    assert [r["alert"] for r in rules] == ["ConnectorAbsent"] * len(enabled)
    assert {r["labels"]["connector"] for r in rules} == enabled
    for rule in rules:
        name = rule["labels"]["connector"]
        deployment = rendered.deployments()[name]["metadata"]["name"]
        assert rule["labels"] == {
            "severity": "critical",
            "namespace": NAMESPACE,
            "connector": name,
            "deployment": deployment,
        }
        assert f'deployment="{deployment}"' in rule["expr"]
        assert f'connector="{name}"' in rule["expr"]
        assert rule["annotations"]["runbook_url"] == "docs/runbook.md#connectorabsent"


def test_absence_rules_fire_for_a_deleted_scaled_down_or_pending_connector(
    chart: helm_python.Chart, promtool: str, tmp_path: Path
) -> None:
    _, rendered = _rendered(chart)
    [rule] = rendered.kind("PrometheusRule")
    deployments = {n: d["metadata"]["name"] for n, d in rendered.deployments().items()}
    watched = next(r for r in presence_rules(rendered) if r["labels"]["connector"] == WATCHED)
    tests = [
        _case("every connector running", _series(deployments, {}), [("10m", None)]),
        _case(
            "scaled to 0: replicas 0, its target gone",
            _series(deployments, {WATCHED: {"replicas": "1x3 0x20", "up": "1x3"}}),
            [("3m", None), ("10m", watched)],
        ),
        _case(
            "deleted: its Deployment's and its target's series end",
            _series(deployments, {WATCHED: {"replicas": "1x3", "up": "1x3"}}),
            [("7m", None), ("14m", watched)],
        ),
        _case(
            "pending: the Deployment wants a pod that never got an address",
            _series(deployments, {WATCHED: {"up": None}}),
            [("4m", None), ("6m", watched)],
        ),
    ]
    result = _promtool_test(promtool, tmp_path, rule, tests)
    assert result.returncode == 0, result.stdout + result.stderr


def test_without_kube_state_metrics_absence_is_read_from_the_targets_alone(
    chart: helm_python.Chart, promtool: str, tmp_path: Path
) -> None:
    _, rendered = _rendered(chart, kubeStateMetrics=False)
    [rule] = rendered.kind("PrometheusRule")
    rules = presence_rules(rendered)
    assert all("kube_" not in r["expr"] for r in rules)
    deployments = {n: d["metadata"]["name"] for n, d in rendered.deployments().items()}
    watched = next(r for r in rules if r["labels"]["connector"] == WATCHED)
    no_ksm: dict[str, dict[str, str | None]] = {n: {"replicas": None} for n in deployments}
    tests = [
        _case("every connector scraped", _series(deployments, no_ksm), [("10m", None)]),
        _case(
            "one target gone",
            _series(deployments, {**no_ksm, WATCHED: {"replicas": None, "up": "1x3"}}),
            [("7m", None), ("14m", watched)],
        ),
    ]
    result = _promtool_test(promtool, tmp_path, rule, tests)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("base", ["https://git.example.com/trading/connector/blob/v0.1.0/"])
def test_runbook_links_are_made_absolute_with_the_base_url(
    chart: helm_python.Chart, base: str
) -> None:
    _, rendered = _rendered(chart, runbookBaseUrl=base)
    [rule] = rendered.kind("PrometheusRule")
    urls = [r["annotations"]["runbook_url"] for g in rule["spec"]["groups"] for r in g["rules"]]
    assert urls and all(u.startswith(f"{base}docs/runbook.md#") for u in urls)
