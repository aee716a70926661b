"""What operators watch csm with: the collector, the trace viewer, Prometheus, its alert rules and the
Grafana dashboards, in docker compose and on Kubernetes. No container runs here, so the files are
checked for what can be checked: they parse, they are wired to each other, and every metric a
dashboard or an alert names is one that the running services really export."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from services.registry import SERVICES
from tests.harness import Stack

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
OBSERVABILITY = ROOT / "deploy" / "observability"
DASHBOARDS = OBSERVABILITY / "grafana" / "dashboards"
ALERTS = yaml.safe_load((OBSERVABILITY / "alerts.yml").read_text())
METRIC = re.compile(r"\b(csm_[a-z_]+)\b")


def exported(metrics_text: str) -> set[str]:
    """Every series name a /metrics page offers, labelled families with no sample yet included."""
    names: set[str] = set()
    for family in text_string_to_metric_families(metrics_text):
        names.add(family.name)
        names |= {sample.name for sample in family.samples}
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}.get(family.type, ())
        names |= {family.name + suffix for suffix in suffixes}
    return names


@pytest.fixture
async def metrics_of(stack: Stack) -> dict[str, set[str]]:
    """What each running service (workers and scanners included) exports at /metrics."""
    found = {}
    for name in SERVICES:
        service = await stack.start(name)
        found[name] = exported((await service.client.get("/metrics")).text)
    return found


def expressions(dashboard: dict[str, Any]) -> list[str]:
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


async def test_each_dashboard_and_alert_names_only_metrics_the_services_export(
    metrics_of: dict[str, set[str]],
) -> None:
    for name in SERVICES:
        dashboard = json.loads((DASHBOARDS / f"{name}.json").read_text())
        used = {metric for expr in expressions(dashboard) for metric in METRIC.findall(expr)}
        assert len(used) >= 6, (name, used)
        assert used - metrics_of[name] == set(), name
        # Each query is about this service: the job Prometheus scrapes it as.
        assert all(f'job="{name}"' in expr for expr in expressions(dashboard)), name
    every = set().union(*metrics_of.values())
    rules = [rule for group in ALERTS["groups"] for rule in group["rules"]]
    used = {metric for rule in rules for metric in METRIC.findall(rule["expr"])}
    assert used and used - every == set()


async def test_the_dashboards_show_what_the_issue_asks_of_them(metrics_of: dict[str, set[str]]) -> None:
    wanted = {
        "csm_http_requests_total",
        "csm_http_request_seconds_bucket",
        "csm_consumer_lag",
        "csm_outbox_pending",
        "csm_events_dead_lettered_total",
    }
    for name in SERVICES:
        used = set(
            METRIC.findall(" ".join(expressions(json.loads((DASHBOARDS / f"{name}.json").read_text()))))
        )
        assert wanted <= used, name
    complaints = " ".join(expressions(json.loads((DASHBOARDS / "complaints.json").read_text())))
    assert "csm_sla_warnings_total" in complaints and "csm_sla_breaches_total" in complaints
    notify = " ".join(expressions(json.loads((DASHBOARDS / "notify.json").read_text())))
    assert "csm_notify_messages_total" in notify
    assert {"csm_sla_breaches_total", "csm_notify_messages_total"} <= metrics_of["complaints"] | metrics_of[
        "notify"
    ]


def test_there_are_alerts_for_a_growing_backlog_dead_letters_and_breaches() -> None:
    by_name = {rule["alert"]: rule["expr"] for group in ALERTS["groups"] for rule in group["rules"]}
    assert "csm_outbox_pending" in by_name["CsmOutboxBacklogGrowing"]
    assert "csm_consumer_lag" in by_name["CsmConsumerLagGrowing"]
    assert "csm_events_dead_lettered_total" in by_name["CsmDeadLetters"]
    assert "csm_sla_breaches_total" in by_name["CsmSlaBreaches"]


def test_compose_runs_the_collector_the_trace_viewer_prometheus_and_grafana_from_the_repository_s_files() -> (
    None
):
    services = COMPOSE["services"]
    assert {"otel-collector", "jaeger", "prometheus", "grafana"} <= set(services)
    for name in ("otel-collector", "prometheus", "grafana"):
        for volume in services[name]["volumes"]:
            source = volume.split(":")[0]
            assert (ROOT / source).exists(), (name, source)
    prometheus = yaml.safe_load((OBSERVABILITY / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job["static_configs"][0]["targets"] for job in prometheus["scrape_configs"]}
    assert set(jobs) == set(SERVICES)
    for name, entry in SERVICES.items():
        assert jobs[name] == [f"{name}:{entry.settings.model_fields['port'].default}"]
    mounted = {volume.split(":")[1] for volume in services["prometheus"]["volumes"]}
    assert set(prometheus["rule_files"]) <= mounted
    # The services send their spans to the collector, whose OTLP/HTTP receiver listens there.
    collector = yaml.safe_load((OBSERVABILITY / "otel-collector.yaml").read_text())
    endpoint = COMPOSE["x-csm-env"]["CSM_OTEL_ENDPOINT"]
    assert endpoint.endswith("http://otel-collector:4318}")
    assert collector["receivers"]["otlp"]["protocols"]["http"]["endpoint"].endswith(":4318")
    pipeline = collector["service"]["pipelines"]["traces"]
    assert set(pipeline["exporters"]) <= set(collector["exporters"])
    assert collector["exporters"]["otlp/jaeger"]["endpoint"].split(":")[0] in services
    datasources = yaml.safe_load(
        (OBSERVABILITY / "grafana/provisioning/datasources/datasources.yaml").read_text()
    )
    assert {source["uid"] for source in datasources["datasources"]} == {"prometheus", "jaeger"}


def test_kubernetes_gets_the_same_rules_dashboards_and_collector() -> None:
    kustomization = yaml.safe_load((OBSERVABILITY / "kustomization.yaml").read_text())
    for generator in kustomization["configMapGenerator"]:
        for entry in generator["files"]:
            assert (OBSERVABILITY / entry.split("=")[1]).exists(), entry
    dashboards = next(g for g in kustomization["configMapGenerator"] if g["name"] == "csm-grafana-dashboards")
    assert len(dashboards["files"]) == len(SERVICES)
    assert (
        "../observability"
        in yaml.safe_load((ROOT / "deploy/k8s/kustomization.yaml").read_text())["resources"]
    )
    documents = [doc for doc in yaml.safe_load_all((OBSERVABILITY / "k8s.yaml").read_text()) if doc]
    [rule] = [doc for doc in documents if doc["kind"] == "PrometheusRule"]
    assert rule["spec"]["groups"] == ALERTS["groups"]
    config = yaml.safe_load((ROOT / "deploy/k8s/config.yaml").read_text())["data"]
    services = {doc["metadata"]["name"] for doc in documents if doc["kind"] == "Service"}
    assert config["CSM_OTEL_ENDPOINT"] == "http://otel-collector:4318" and "otel-collector" in services
