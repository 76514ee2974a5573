"""The Helm chart, linted and rendered by Helm's own Go SDK, checked as Kubernetes objects."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import helm_python
import kubernetes_validate
import pytest
import yaml

from connector.settings import SecretRef, Settings, load_settings, parse_settings
from tests.deploy.artefacts import ALERTS, CHART, DASHBOARD, alert_exprs
from tests.deploy.rendered import (
    NAMESPACE,
    VALUES_FILES,
    Rendered,
    assert_carries_the_deploy_alerts,
    container,
    load_values,
    render,
)

KUBE_VERSION = "1.30.0"
BUILT_IN_API_VERSIONS = {
    "ConfigMap": "v1",
    "Service": "v1",
    "ServiceAccount": "v1",
    "Deployment": "apps/v1",
    "PodDisruptionBudget": "policy/v1",
}
OPERATOR_KINDS = {"ServiceMonitor", "PrometheusRule"}
# Keys whose value is a secret when it is a plain string rather than a SecretRef mapping.
SECRET_WORDS = ("password", "secret", "token", "private_key", "credential")

VALUES_IDS = [p.name for p in VALUES_FILES]


def _values(name: str) -> dict[str, Any]:
    return load_values(CHART / "ci" / name)


def _enabled(values: dict[str, Any]) -> set[str]:
    return {n for n, c in values["connectors"].items() if c.get("enabled", True) is not False}


def _settings(rendered: Rendered, deployment: dict[str, Any]) -> Settings:
    return parse_settings(yaml.safe_load(rendered.config_text(deployment)), origin="ConfigMap")


def _lint_errors(values: dict[str, Any] | None) -> list[str]:
    report = helm_python.lint(CHART, values, strict=True, kube_version=f"v{KUBE_VERSION}")
    # Severity 1 is INFO ("icon is recommended"); warnings and errors fail the chart.
    return [m["error"] for m in report["messages"] if m["severity"] > 1] + list(report["errors"])


@pytest.fixture(params=VALUES_FILES, ids=VALUES_IDS)
def case(
    request: pytest.FixtureRequest, chart: helm_python.Chart
) -> tuple[dict[str, Any], Rendered]:
    values = load_values(request.param)
    return values, render(chart, values)


def test_there_are_at_least_three_values_files() -> None:
    assert len(VALUES_FILES) >= 3


@pytest.mark.parametrize("path", [None, *VALUES_FILES], ids=["defaults", *VALUES_IDS])
def test_chart_lints_clean(path: Path | None) -> None:
    assert _lint_errors(None if path is None else load_values(path)) == []


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"config": {"schema_registry": {"password": "hunter2"}}}, "password"),
        ({"config": {"kafka": {"security": {"sasl.password": "hunter2"}}}}, "sasl.password"),
        ({"connectors": {"a": {"config": {"metrics": {"port": 1}}}}}, "metrics"),
        ({"connectors": {"Upper": {}}}, "Upper"),
        ({"connectors": {"a": {"replicas": 2}}}, "replicas"),
        ({"kafka": {"sasl": {"enabled": True}}}, "existingSecret"),
        ({"kafka": {"tls": {"enabled": True, "existingSecret": "ca", "certKey": "c"}}}, "keyKey"),
        ({"securityContext": {"allowPrivilegeEscalation": True}}, "allowPrivilegeEscalation"),
    ],
    ids=[
        "inline-registry-password",
        "inline-sasl-password",
        "chart-owned-key",
        "bad-connector-name",
        "replicas-are-not-a-knob",
        "sasl-without-secret",
        "client-cert-without-key",
        "privilege-escalation",
    ],
)
def test_values_schema_rejects(values: dict[str, Any], complaint: str) -> None:
    errors = _lint_errors(values)
    assert errors, "accepted"
    assert complaint in "\n".join(errors)


def test_rendered_objects_validate_against_kubernetes_schemas(
    case: tuple[dict[str, Any], Rendered],
) -> None:
    _, rendered = case
    kinds = {o["kind"] for o in rendered.objects}
    assert {"Deployment", "ConfigMap", "Service"} <= kinds
    for obj in rendered.objects:
        kind = obj["kind"]
        if kind in OPERATOR_KINDS:
            # kubernetes-validate has no schemas for the Prometheus Operator's CRDs.
            assert obj["apiVersion"] == "monitoring.coreos.com/v1"
            continue
        assert obj["apiVersion"] == BUILT_IN_API_VERSIONS[kind], kind
        kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
        assert obj["metadata"]["namespace"] == NAMESPACE


def test_one_single_replica_recreate_deployment_per_enabled_connector(
    case: tuple[dict[str, Any], Rendered],
) -> None:
    values, rendered = case
    deployments = rendered.deployments()
    assert set(deployments) == _enabled(values)
    for name, deployment in deployments.items():
        spec = deployment["spec"]
        assert spec["replicas"] == 1
        assert spec["strategy"] == {"type": "Recreate"}
        assert spec["selector"]["matchLabels"]["app.kubernetes.io/component"] == name
        assert _settings(rendered, deployment).name == name


def test_every_configmap_is_a_valid_configuration_without_secrets(
    case: tuple[dict[str, Any], Rendered],
) -> None:
    _, rendered = case
    assert rendered.kind("Secret") == [], "the chart must never hold secret values"
    configs = [o for o in rendered.kind("ConfigMap") if "connector.yaml" in o["data"]]
    assert len(configs) == len(rendered.deployments())
    for configmap in configs:
        data = yaml.safe_load(configmap["data"]["connector.yaml"])
        parse_settings(data, origin=configmap["metadata"]["name"])
        _assert_no_secret_values(data, "")


def _assert_no_secret_values(node: object, path: str) -> None:
    """Secret-named keys may only hold a SecretRef ({file} or {env}), never a value."""
    if isinstance(node, dict):
        for key, value in node.items():
            where = f"{path}.{key}" if path else str(key)
            if any(word in str(key).lower() for word in SECRET_WORDS):
                assert isinstance(value, dict), f"{where} holds a secret value"
                SecretRef.model_validate(value)
            _assert_no_secret_values(value, where)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            _assert_no_secret_values(item, f"{path}[{i}]")


def _secret_ref_files(node: object) -> list[Path]:
    """Files named by SecretRefs ({file: ...}) anywhere in a configuration tree."""
    if isinstance(node, dict):
        if set(node) == {"file"}:
            return [Path(node["file"])]
        return [f for value in node.values() for f in _secret_ref_files(value)]
    if isinstance(node, list):
        return [f for item in node for f in _secret_ref_files(item)]
    return []


def test_secrets_reach_the_process_through_mounts_and_secret_refs(
    chart: helm_python.Chart, tmp_path: Path
) -> None:
    """The environment the kubelet would build completes the ConfigMap's configuration."""
    rendered = render(chart, _values("secured-values.yaml"))
    seen_security: set[str] = set()
    for name, deployment in rendered.deployments().items():
        box = container(deployment)
        environ: dict[str, str] = {}
        for entry in box.get("env", []):
            ref = entry.get("valueFrom", {}).get("secretKeyRef")
            environ[entry["name"]] = f"from-{ref['name']}-{ref['key']}" if ref else entry["value"]
        path = tmp_path / f"{name}.yaml"
        path.write_text(rendered.config_text(deployment), encoding="utf-8")
        settings = load_settings(path, environ)

        security = {k: v.get_secret_value() for k, v in settings.kafka.security.items()}
        assert security["sasl.username"] == "from-connector-kafka-user-username"
        assert security["sasl.password"] == "from-connector-kafka-user-password"
        assert security["security.protocol"] == "SASL_SSL"
        registry = settings.schema_registry
        assert registry.username == "from-connector-registry-user"
        assert registry.password is not None
        assert registry.password.get_secret_value() == "from-connector-registry-pass"
        seen_security |= set(security)

        # Every file the configuration names is on a read-only mount of an existing Secret.
        mounts = {m["name"]: m for m in box["volumeMounts"]}
        volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
        secret_dirs = {
            mounts[n]["mountPath"]: v["secret"]["secretName"]
            for n, v in volumes.items()
            if "secret" in v
        }
        for vname, volume in volumes.items():
            if "secret" in volume:
                assert mounts[vname]["readOnly"] is True
        files = [Path(v) for k, v in security.items() if k.endswith(".location")]
        files += _secret_ref_files(yaml.safe_load(rendered.config_text(deployment)))
        for file in files:
            assert str(file.parent) in secret_dirs, f"{file} is on no mounted Secret"
    assert {"ssl.ca.location", "ssl.certificate.location", "ssl.key.location"} <= seen_security
    oms = rendered.deployments()["tplus-oms"]
    assert len(_secret_ref_files(yaml.safe_load(rendered.config_text(oms)))) == 2


def test_probes_security_context_and_writable_tmp(case: tuple[dict[str, Any], Rendered]) -> None:
    values, rendered = case
    for deployment in rendered.deployments().values():
        settings = _settings(rendered, deployment)
        pod = deployment["spec"]["template"]["spec"]
        box = container(deployment)
        ports = {p["name"]: p["containerPort"] for p in box["ports"]}
        assert ports == {"metrics": settings.metrics.port}
        assert settings.metrics.host == "0.0.0.0"
        for probe, path in (
            ("startupProbe", "/healthz"),
            ("livenessProbe", "/healthz"),
            ("readinessProbe", "/readyz"),
        ):
            assert box[probe]["httpGet"] == {"path": path, "port": "metrics"}, probe

        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] > 0
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        sc = box["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert "memory" in box["resources"]["limits"]

        mounts = {m["mountPath"]: m["name"] for m in box["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert "emptyDir" in volumes[mounts["/tmp"]]
        assert all(m.get("readOnly") for m in box["volumeMounts"] if m["mountPath"] != "/tmp")
        # SIGTERM leaves the producer its flush budget before the kubelet kills the process.
        extra = values.get("terminationGraceExtraSeconds", 10)
        assert pod["terminationGracePeriodSeconds"] == math.ceil(settings.shutdown_grace_s) + extra


def test_shared_configuration_merges_with_each_connectors_own(chart: helm_python.Chart) -> None:
    rendered = render(chart, _values("sharded-values.yaml"))
    d = rendered.deployments()
    a, b, trades = (
        _settings(rendered, d[n]) for n in ("tplus-depth-a", "tplus-depth-b", "tplus-trades")
    )
    # The connector's false and 0 win over the shared true and 20.
    # A depth shard also writes its assets' book checkpoints.
    assert a.topics() == {"tplus.depth": "tplus.depth", "tplus.books": "tplus.books"}
    assert (a.kafka.create_topics, a.kafka.linger_ms) == (True, 20)
    assert (b.kafka.create_topics, b.kafka.linger_ms) == (False, 0)
    assert b.tplus.market_data.assets == ["4", "5"]
    assert trades.topics() == {"tplus.trades": "tplus.trades"}
    assert trades.logging.level == "DEBUG" and a.logging.level == "INFO"
    assert {s.schema_registry.auto_register for s in (a, b, trades)} == {False}
    assert container(d["tplus-depth-b"])["resources"]["limits"]["memory"] == "1Gi"
    assert container(d["tplus-trades"])["env"] == [
        {"name": "CONNECTOR__TPLUS__MARKET_DATA__SNAPSHOT_TIMEOUT_S", "value": "20"}
    ]
    annotations = d["tplus-trades"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["example.com/team"] == "market-data"


def _checksums(rendered: Rendered) -> dict[str, str]:
    return {
        name: d["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
        for name, d in rendered.deployments().items()
    }


def test_config_checksum_rolls_only_the_connector_whose_config_changed(
    chart: helm_python.Chart,
) -> None:
    values = _values("sharded-values.yaml")
    before = _checksums(render(chart, values))

    changed = copy.deepcopy(values)
    changed["connectors"]["tplus-trades"]["config"]["tplus"]["market_data"]["assets"] = ["2"]
    changed["connectors"]["tplus-depth-b"]["resources"]["limits"]["memory"] = "2Gi"
    after = _checksums(render(chart, changed))
    assert after["tplus-trades"] != before["tplus-trades"]
    assert {k: v for k, v in after.items() if k != "tplus-trades"} == {
        k: v for k, v in before.items() if k != "tplus-trades"
    }

    shared = copy.deepcopy(values)
    shared["config"]["kafka"]["bootstrap_servers"] = "broker-9.kafka:9092"
    rolled = _checksums(render(chart, shared))
    assert all(rolled[k] != before[k] for k in before), "a shared change rolls every connector"

    # tplus-depth-b sets its own linger_ms, so the shared one does not reach it.
    shared["config"]["kafka"]["linger_ms"] = 50
    again = _checksums(render(chart, shared))
    assert {k for k in again if again[k] != rolled[k]} == {"tplus-depth-a", "tplus-trades"}


def test_services_scrape_each_connector_even_when_not_ready(
    case: tuple[dict[str, Any], Rendered],
) -> None:
    _, rendered = case
    services = rendered.kind("Service")
    deployments = rendered.deployments()
    assert len(services) == len(deployments)
    for service in services:
        spec = service["spec"]
        assert spec["publishNotReadyAddresses"] is True
        matched = [
            n
            for n, d in deployments.items()
            if spec["selector"].items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(matched) == 1
        assert spec["ports"] == [
            {
                "name": "metrics",
                "port": spec["ports"][0]["port"],
                "targetPort": "metrics",
                "protocol": "TCP",
            }
        ]


def test_disruption_budget_covers_every_connector_and_lets_drains_proceed(
    chart: helm_python.Chart,
) -> None:
    rendered = render(chart, _values("secured-values.yaml"))
    [pdb] = rendered.kind("PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    selector = pdb["spec"]["selector"]["matchLabels"].items()
    for deployment in rendered.deployments().values():
        assert selector <= deployment["spec"]["template"]["metadata"]["labels"].items()
    off = render(chart, _values("sharded-values.yaml"))
    assert off.kind("PodDisruptionBudget") == []


@pytest.mark.parametrize("toggle", ["serviceMonitor", "prometheusRule", "grafanaDashboard"])
def test_monitoring_objects_follow_their_toggles(chart: helm_python.Chart, toggle: str) -> None:
    values = _values("secured-values.yaml")
    on = render(chart, values)
    values[toggle]["enabled"] = False
    off = render(chart, values)
    kind = {"serviceMonitor": "ServiceMonitor", "prometheusRule": "PrometheusRule"}.get(toggle)
    if kind is not None:
        assert len(on.kind(kind)) == 1 and off.kind(kind) == []
    else:
        assert len(on.kind("ConfigMap")) == len(off.kind("ConfigMap")) + 1
    assert len(on.objects) == len(off.objects) + 1


def test_service_monitor_scrapes_the_services_as_the_alerts_expect(
    chart: helm_python.Chart,
) -> None:
    rendered = render(chart, _values("secured-values.yaml"))
    [monitor] = rendered.kind("ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    selector = monitor["spec"]["selector"]["matchLabels"].items()
    for service in rendered.kind("Service"):
        assert selector <= service["metadata"]["labels"].items()
    [endpoint] = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("metrics", "/metrics")
    job = [r for r in endpoint["relabelings"] if r["targetLabel"] == "job"]
    assert job == [{"action": "replace", "targetLabel": "job", "replacement": "connector"}]
    assert 'up{job="connector"}' in alert_exprs()["ConnectorDown"]


def test_prometheus_rule_carries_the_deploy_alerts_verbatim(chart: helm_python.Chart) -> None:
    linked = CHART / "files" / "alerts.yaml"
    assert linked.is_symlink() and linked.resolve() == ALERTS.resolve()
    [rule] = render(chart, _values("secured-values.yaml")).kind("PrometheusRule")
    assert_carries_the_deploy_alerts(rule)


def test_dashboard_configmap_carries_the_deploy_dashboard(chart: helm_python.Chart) -> None:
    linked = CHART / "files" / "dashboard.json"
    assert linked.is_symlink() and linked.resolve() == DASHBOARD.resolve()
    rendered = render(chart, _values("secured-values.yaml"))
    [board] = [o for o in rendered.kind("ConfigMap") if "connector.json" in o["data"]]
    assert board["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert board["data"]["connector.json"].strip() == DASHBOARD.read_text(encoding="utf-8").strip()


def test_image_by_digest_and_by_tag(chart: helm_python.Chart) -> None:
    secured = render(chart, _values("secured-values.yaml"))
    images = {container(d)["image"] for d in secured.deployments().values()}
    assert images == {
        "registry.example.com/trading/connector@sha256:"
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    }
    minimal = render(chart, _values("minimal-values.yaml"))
    app_version = yaml.safe_load((CHART / "Chart.yaml").read_text(encoding="utf-8"))["appVersion"]
    assert {container(d)["image"] for d in minimal.deployments().values()} == {
        f"ghcr.io/example/connector:{app_version}"
    }


def test_packaged_chart_carries_the_linked_files(tmp_path: Path) -> None:
    archive = Path(helm_python.package(CHART, destination=tmp_path))
    packaged = helm_python.Chart.load_archive(archive.read_bytes())
    try:
        rendered = render(packaged, _values("secured-values.yaml"))
    finally:
        packaged.close()
    [rule] = rendered.kind("PrometheusRule")
    assert_carries_the_deploy_alerts(rule)
    assert len(rendered.deployments()) == 2
