"""The Grafana dashboard: well-formed, valid PromQL, only the connector's own metrics."""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest

from connector.ops.metrics import Metrics
from tests.deploy.artefacts import (
    alert_exprs,
    alert_rules,
    dashboard,
    dashboard_exprs,
    dashboard_panels,
    leftover_variables,
    runbook_sections,
)
from tests.deploy.promql import counter_arguments, exposition_types, metric_names, series_names

# Written by Prometheus for every target, not by the connector.
SCRAPE_SERIES = {"up"}
FILTER = 'namespace=~"$namespace", connector=~"$connector"'


def _declared() -> dict[str, str]:
    """Series the connector's Metrics declare, with their types (no traffic needed)."""
    registry = CollectorRegistry()
    Metrics(registry)
    return series_names(exposition_types(generate_latest(registry).decode()))


def test_dashboard_is_well_formed() -> None:
    board = dashboard()
    assert board["uid"] and board["title"]
    panels = dashboard_panels()
    ids = Counter(p["id"] for p in panels)
    assert all(n == 1 for n in ids.values()), "panel ids repeat"
    variables = {v["name"] for v in board["templating"]["list"]}
    assert variables == {"datasource", "namespace", "connector", "runbook"}
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs))
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24


def test_every_query_filters_by_namespace_and_connector() -> None:
    """Pick a namespace and a connector, not a pod IP: every query follows both variables."""
    for panel in dashboard_panels():
        for target in panel.get("targets", []):
            assert FILTER in target["expr"], f"{panel['title']} / {target['refId']}"
            assert "$instance" not in target["expr"]


def test_alert_annotations_follow_the_variables() -> None:
    [annotation] = dashboard()["annotations"]["list"]
    assert annotation["enable"] is True
    assert annotation["expr"].startswith("ALERTS{") and FILTER in annotation["expr"]
    assert 'alertstate="firing"' in annotation["expr"]


def test_every_alert_has_a_panel_linking_its_runbook_section() -> None:
    board = dashboard()
    assert any(link["url"] == "${runbook}" for link in board["links"])
    [runbook] = [v for v in board["templating"]["list"] if v["name"] == "runbook"]
    assert runbook["query"] == "docs/runbook.md"
    linked = {
        link["url"].removeprefix("${runbook}#")
        for panel in dashboard_panels()
        for link in panel.get("links", [])
    }
    sections = {name.lower() for name in runbook_sections()}
    assert linked <= sections, sorted(linked - sections)
    for rule in alert_rules():
        if rule["alert"] == "ConnectorTargetsMissing":
            continue  # nothing to chart: there is no connector to scrape
        assert rule["alert"].lower() in linked, rule["alert"]


def test_legends_stay_short() -> None:
    """Series aggregate to at most two labels, never per pod, instance or subscription."""
    for panel in dashboard_panels():
        for target in panel.get("targets", []):
            legend = target.get("legendFormat", "")
            labels = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", legend))
            assert len(labels) <= 2, f"{panel['title']}: {legend}"
            assert not labels & {"instance", "pod", "subscription"}, panel["title"]
            grouping = re.findall(r"\bby \(([^)]*)\)", target["expr"])
            for labels_text in grouping:
                kept = {label.strip() for label in labels_text.split(",")} - {"le"}
                assert len(kept) <= 2, f"{panel['title']}: by ({labels_text})"
            if "histogram_quantile(0.99" in target["expr"]:
                assert target["expr"].startswith("topk("), panel["title"]


def test_stat_panels_set_their_decimals() -> None:
    stats = [p for p in dashboard_panels() if p["type"] == "stat"]
    assert stats
    for panel in stats:
        assert panel["fieldConfig"]["defaults"]["decimals"] == 0, panel["title"]


def test_dashboard_charts_what_on_call_needs() -> None:
    exprs = " ".join(dashboard_exprs().values())
    for metric in (
        "connector_records_delivered_total",
        "connector_event_lag_seconds_bucket",
        "connector_sequence_gaps_total",
        "connector_reconnects_total",
        "connector_producer_queue_messages",
        "connector_dlq_records_total",
    ):
        assert metric in exprs


def test_every_dashboard_query_is_valid_promql(promtool: str, tmp_path: Path) -> None:
    exprs = dashboard_exprs()
    assert len(exprs) >= 20
    rules = []
    for i, (where, expr) in enumerate(sorted(exprs.items())):
        assert leftover_variables(expr) == [], where
        rules.append({"record": f"dashboard:query_{i}", "expr": expr})
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


@pytest.mark.parametrize("source", ["dashboard", "alerts"])
def test_queries_name_only_declared_metrics_of_the_right_type(source: str) -> None:
    exprs = dashboard_exprs() if source == "dashboard" else alert_exprs()
    declared = _declared()
    for where, expr in exprs.items():
        names = metric_names(expr)
        assert names, where
        unknown = names - set(declared) - SCRAPE_SERIES
        assert not unknown, f"{where}: {sorted(unknown)}"
        for name in counter_arguments(expr):
            assert declared[name] in {"counter", "histogram"}, f"{where}: rate of {name}"
            assert name.endswith(("_total", "_bucket", "_sum", "_count")), where


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        (
            'histogram_quantile(0.99, sum by (le, stream) (rate(a_bucket{job="x"}[5m])))',
            {"a_bucket"},
        ),
        ('sum(up{job="connector"}) / count(b{i=~"$x"}) or vector(0)', {"up", "b"}),
        ("sum without (reason) (increase(c_total[15m])) > 6", {"c_total"}),
        ('absent(d{job="a"}) and on (job) e offset 5m', {"d", "e"}),
        ("max by (venue) (f) > 1e3", {"f"}),
    ],
)
def test_metric_name_reader(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names
