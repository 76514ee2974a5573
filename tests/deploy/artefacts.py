"""Where the deployment artefacts live, and their PromQL expressions ready to check."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CHART = ROOT / "helm" / "connector"
DOCKERFILE = DEPLOY / "Dockerfile"
ALERTS = DEPLOY / "prometheus" / "alerts.yaml"
ALERT_TESTS = DEPLOY / "prometheus" / "alerts.test.yaml"
PROMETHEUS_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
DASHBOARD = DEPLOY / "grafana" / "connector.json"
INHIBIT = DEPLOY / "alertmanager" / "alertmanager.yaml"
RUNBOOK = ROOT / "docs" / "runbook.md"
COMPOSE = DEPLOY / "compose.yaml"

# Grafana's built-in and dashboard variables, replaced by values Prometheus accepts.
_DASHBOARD_SUBSTITUTIONS = {
    "$__rate_interval": "1m",
    "$__interval": "30s",
    "$__range": "1h",
    "$namespace": ".*",
    "$connector": ".*",
}


def alert_rules() -> list[dict[str, Any]]:
    """Every alerting rule of deploy/prometheus/alerts.yaml."""
    doc = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return [rule for group in doc["groups"] for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return data


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def dashboard_panels() -> list[dict[str, Any]]:
    """Every panel, rows' nested panels included."""
    return list(_panels(dashboard()["panels"]))


def dashboard_exprs() -> dict[str, str]:
    """``panel title / refId`` → the target's PromQL with Grafana variables substituted."""
    out: dict[str, str] = {}
    for panel in dashboard_panels():
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in _DASHBOARD_SUBSTITUTIONS.items():
                expr = expr.replace(variable, value)
            out[f"{panel['title']} / {target['refId']}"] = expr
    return out


def runbook_sections() -> dict[str, str]:
    """docs/runbook.md's ``## Heading`` sections: heading → its text."""
    text = RUNBOOK.read_text(encoding="utf-8")
    parts = re.split(r"^## (.+)$", text, flags=re.MULTILINE)
    return {heading.strip(): body for heading, body in zip(parts[1::2], parts[2::2], strict=True)}


def alert_exprs() -> dict[str, str]:
    return {rule["alert"]: rule["expr"] for rule in alert_rules()}


def leftover_variables(expr: str) -> list[str]:
    """Grafana variables the substitutions above did not cover."""
    return re.findall(r"\$\{?\w+", expr)
