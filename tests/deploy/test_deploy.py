"""No Docker engine runs here, so the production shape is checked for what can be checked:
that the files parse and that every service, command, image, port and variable they name exists."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.main import get_command

from services.cli import app as cli
from services.registry import SERVICES
from shared.events import EPOCH_TOPIC, TOPICS, dead_letter_topic
from shared.settings import CommonSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
K8S = ROOT / "deploy" / "k8s"


def k8s_documents(name: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((K8S / name).read_text()) if doc]


def is_setting(variable: str) -> bool:
    for entry in SERVICES.values():
        prefix = entry.settings.model_config["env_prefix"]
        if variable.startswith(prefix) and variable[len(prefix) :].lower() in entry.settings.model_fields:
            return True
    return variable.startswith("CSM_") and variable[4:].lower() in CommonSettings.model_fields


def csm_commands() -> set[str]:
    return set(get_command(cli).commands)  # type: ignore[attr-defined]


def test_compose_runs_every_service_from_the_one_image_on_its_port() -> None:
    services = COMPOSE["services"]
    for name, entry in SERVICES.items():
        spec = services[name]
        assert spec["image"] == "csm:latest"
        assert spec["command"][:3] == ["csm", "serve", name]
        port = entry.settings.model_fields["port"].default
        assert spec["ports"] == [f"{port}:{port}"]
        assert f"127.0.0.1:{port}/readyz" in " ".join(spec["healthcheck"]["test"])
        assert spec["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["build"]["dockerfile"] == "deploy/Dockerfile"
    assert (ROOT / services["migrate"]["build"]["dockerfile"]).exists()
    assert (
        services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    )  # KRaft, no ZooKeeper
    assert {"postgres", "mailcatcher"} <= set(services)


def test_every_csm_command_the_deployment_runs_exists() -> None:
    used = {
        spec["command"][1] for spec in COMPOSE["services"].values() if spec.get("command", [""])[0] == "csm"
    }
    for name in ("migrate-job.yaml", *(f"{service}.yaml" for service in SERVICES)):
        for doc in k8s_documents(name):
            template = doc.get("spec", {}).get("template", {}).get("spec", {})
            used |= {container["command"][1] for container in template.get("containers", [])}
    assert used == {"serve", "migrate", "topics"}
    assert used <= csm_commands()


def test_every_variable_the_deployment_sets_is_a_setting() -> None:
    named = set()
    for spec in COMPOSE["services"].values():
        named |= {key for key in (spec.get("environment") or {}) if key.startswith("CSM_")}
    for name in ("config.yaml", "secret.example.yaml"):
        for doc in k8s_documents(name):
            named |= set(doc.get("data", {})) | set(doc.get("stringData", {}))
    assert named, "nothing found: the test would pass vacuously"
    assert [variable for variable in sorted(named) if not is_setting(variable)] == []


def test_each_service_database_is_created_by_the_postgres_init_script() -> None:
    created = set(re.findall(r"CREATE DATABASE (\w+);", (ROOT / "deploy/postgres/init.sql").read_text()))
    environment = COMPOSE["services"]["migrate"]["environment"]
    for name in SERVICES:
        url = environment[f"CSM_{name.upper()}_DATABASE_URL"]
        assert url.startswith("postgresql+asyncpg://")
        assert url.rsplit("/", 1)[1] in created


def test_the_dockerfile_copies_what_exists() -> None:
    for line in (ROOT / "deploy/Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), source


@pytest.mark.parametrize("service", list(SERVICES))
def test_each_kubernetes_deployment_matches_its_service(service: str) -> None:
    deployment, k8s_service = k8s_documents(f"{service}.yaml")
    port = SERVICES[service].settings.model_fields["port"].default
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][:3] == ["csm", "serve", service]
    assert container["ports"][0]["containerPort"] == port
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert k8s_service["spec"]["ports"][0]["port"] == port
    assert set(yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]) >= {f"{service}.yaml"}


def test_the_kafka_topics_are_the_catalogs() -> None:
    defined = {
        doc["spec"]["topicName"]: doc["spec"]["partitions"] for doc in k8s_documents("kafka-topics.yaml")
    }
    expected = {*TOPICS.values(), *(dead_letter_topic(name) for name in SERVICES), EPOCH_TOPIC}
    assert set(defined) == expected
    assert defined[EPOCH_TOPIC] == 1
