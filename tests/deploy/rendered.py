"""A rendered chart as Kubernetes objects, with the lookups the chart tests need."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python
import yaml

from tests.deploy.artefacts import ALERTS, CHART

RELEASE = "md"
NAMESPACE = "trading"
VALUES_FILES = sorted((CHART / "ci").glob("*-values.yaml"))


def load_values(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data


@dataclass(frozen=True)
class Rendered:
    objects: list[dict[str, Any]]

    def kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def named(self, kind: str, name: str) -> dict[str, Any]:
        matches = [o for o in self.kind(kind) if o["metadata"]["name"] == name]
        assert len(matches) == 1, f"{kind}/{name}: {len(matches)} objects"
        return matches[0]

    def deployments(self) -> dict[str, dict[str, Any]]:
        """Connector name (the component label) → its Deployment."""
        return {
            d["metadata"]["labels"]["app.kubernetes.io/component"]: d
            for d in self.kind("Deployment")
        }

    def config_text(self, deployment: dict[str, Any]) -> str:
        """The connector.yaml a Deployment's container is started with."""
        volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
        configmap = self.named("ConfigMap", volumes["config"]["configMap"]["name"])
        text: str = configmap["data"]["connector.yaml"]
        return text


def render(chart: helm_python.Chart, values: dict[str, Any]) -> Rendered:
    manifests = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    objects = [
        doc
        for path, text in sorted(manifests.items())
        if path.endswith((".yaml", ".yml"))
        for doc in yaml.safe_load_all(text)
        if doc
    ]
    return Rendered(objects)


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["connector"]
    return containers[0]


PRESENCE_GROUP = "connector.presence"


def assert_carries_the_deploy_alerts(rule: dict[str, Any]) -> None:
    """A PrometheusRule holds deploy/prometheus/alerts.yaml's groups verbatim, then the chart's."""
    deploy = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    groups = rule["spec"]["groups"]
    assert groups[:-1] == deploy["groups"]
    assert groups[-1]["name"] == PRESENCE_GROUP


def presence_rules(rendered: Rendered) -> list[dict[str, Any]]:
    """The chart's ConnectorAbsent rules, one per deployed connector."""
    [rule] = rendered.kind("PrometheusRule")
    rules: list[dict[str, Any]] = rule["spec"]["groups"][-1]["rules"]
    return rules
