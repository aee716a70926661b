"""No Docker engine runs here, so the production shape is checked for what can be checked:
that the files parse and that every service, command, image, port and variable they name exists,
and that the Kafka principals and ACLs they set up are the ones the code needs, and no more."""

from __future__ import annotations

import importlib
import os
import re
import secrets
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings
from typer.main import get_command

from services.cli import app as cli
from services.console.settings import ConsoleSettings
from services.registry import SERVICES
from shared.events import EPOCH_TOPIC, TOPICS, dead_letter_topic
from shared.settings import CommonSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
K8S = ROOT / "deploy" / "k8s"


def k8s_documents(name: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((K8S / name).read_text()) if doc]


def is_setting(variable: str) -> bool:
    every: list[type[BaseSettings]] = [entry.settings for entry in SERVICES.values()]
    every.append(ConsoleSettings)
    for settings in every:
        prefix = settings.model_config["env_prefix"]
        if variable.startswith(prefix) and variable[len(prefix) :].lower() in settings.model_fields:
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
        assert spec["ports"][0] == f"{port}:{port}"
        assert f"127.0.0.1:{port}/readyz" in " ".join(spec["healthcheck"]["test"])
        assert spec["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["build"]["dockerfile"] == "deploy/Dockerfile"
    assert (ROOT / services["migrate"]["build"]["dockerfile"]).exists()
    assert (
        services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    )  # KRaft, no ZooKeeper
    assert {"postgres", "mailcatcher"} <= set(services)
    # The complaints mailbox's SMTP listener, published on the port the listener is told to use.
    complaints = services["complaints"]
    listen = complaints["environment"]["CSM_COMPLAINTS_MAIL_LISTEN_PORT"]
    assert complaints["ports"][1:] == [f"{listen}:{listen}"]
    assert complaints["environment"]["CSM_COMPLAINTS_MAIL_LISTEN_HOST"] == "0.0.0.0"


def test_every_csm_command_the_deployment_runs_exists() -> None:
    used = {
        spec["command"][1] for spec in COMPOSE["services"].values() if spec.get("command", [""])[0] == "csm"
    }
    for name in ("migrate-job.yaml", "console.yaml", *(f"{service}.yaml" for service in SERVICES)):
        for doc in k8s_documents(name):
            template = doc.get("spec", {}).get("template", {}).get("spec", {})
            used |= {container["command"][1] for container in template.get("containers", [])}
    assert used == {"serve", "migrate", "topics", "console"}
    assert used <= csm_commands()


def containers(name: str) -> list[dict[str, Any]]:
    """The containers of the Deployments and Jobs in a Kubernetes file."""
    found: list[dict[str, Any]] = []
    for doc in k8s_documents(name):
        found += doc.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
    return found


def test_every_variable_the_deployment_sets_is_a_setting() -> None:
    named = set()
    for spec in COMPOSE["services"].values():
        named |= {key for key in (spec.get("environment") or {}) if key.startswith("CSM_")}
    for name in ("config.yaml", "secret.example.yaml"):
        for doc in k8s_documents(name):
            named |= set(doc.get("data", {})) | set(doc.get("stringData", {}))
    for name in ("migrate-job.yaml", "console.yaml", *(f"{service}.yaml" for service in SERVICES)):
        for container in containers(name):
            named |= {variable["name"] for variable in container.get("env", [])}
    assert named, "nothing found: the test would pass vacuously"
    assert [variable for variable in sorted(named) if not is_setting(variable)] == []


def test_each_service_database_is_created_by_the_postgres_init_script() -> None:
    created = set(re.findall(r"CREATE DATABASE (\w+);", (ROOT / "deploy/postgres/init.sql").read_text()))
    environment = COMPOSE["services"]["migrate"]["environment"]
    for name in SERVICES:
        url = environment[f"CSM_{name.upper()}_DATABASE_URL"]
        assert url.startswith("postgresql+asyncpg://")
        assert url.rsplit("/", 1)[1] in created


def test_the_four_services_share_one_key_store_that_the_init_script_creates() -> None:
    """Erasure destroys a customer's key in one store; a service with its own would keep reading."""
    created = set(re.findall(r"CREATE DATABASE (\w+);", (ROOT / "deploy/postgres/init.sql").read_text()))
    urls = {compose_env(name).get("CSM_KEYS_DATABASE_URL") for name in SERVICES}
    [url] = urls
    assert url is not None and url.startswith("postgresql+asyncpg://") and url.rsplit("/", 1)[1] in created
    secret = k8s_documents("secret.example.yaml")[0]["stringData"]
    assert secret["CSM_KEYS_DATABASE_URL"].rsplit("/", 1)[1] in created


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
    if service == "complaints":
        # The mailbox's SMTP listener: listening where the container and the Service say.
        env = {item["name"]: item.get("value") for item in container["env"]}
        listen = int(env["CSM_COMPLAINTS_MAIL_LISTEN_PORT"])
        assert env["CSM_COMPLAINTS_MAIL_LISTEN_HOST"] == "0.0.0.0"
        assert {"name": "smtp", "containerPort": listen} in container["ports"]
        assert {"name": "smtp", "port": listen, "targetPort": "smtp"} in k8s_service["spec"]["ports"]


def test_the_kafka_topics_are_the_catalogs() -> None:
    defined = {
        doc["spec"]["topicName"]: doc["spec"]["partitions"] for doc in k8s_documents("kafka-topics.yaml")
    }
    expected = {*TOPICS.values(), *(dead_letter_topic(name) for name in SERVICES), EPOCH_TOPIC}
    assert set(defined) == expected
    assert defined[EPOCH_TOPIC] == 1


# Kafka principals and ACLs. A grant is (principal, operation, resource type, name, pattern type),
# read from the kafka-init script of docker-compose.yml and from the KafkaUsers of deploy/k8s.
INIT_SCRIPT = ROOT / "deploy" / "kafka" / "init.sh"


@dataclass(frozen=True, order=True)
class Grant:
    principal: str
    operation: str
    resource: str
    name: str
    pattern: str = "literal"


@pytest.fixture(scope="module")
def consumed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    """The topics each service's consumer subscribes to, from the services themselves (not started)."""
    directory = tmp_path_factory.mktemp("apps")
    topics: dict[str, set[str]] = {}
    for name, entry in SERVICES.items():
        module = importlib.import_module(entry.factory.split(":")[0])
        settings = entry.settings(
            database_url=f"sqlite+aiosqlite:///{directory / name}.db", common=CommonSettings(env="test")
        )
        consumer = module.create_app(settings).state.runtime.consumer
        topics[name] = set(consumer.topics) if consumer is not None else set()
    assert all(topics.values()), topics
    return topics


def principal(service: str) -> str:
    return f"User:csm-{service}"


def needed(service: str, consumed: set[str]) -> set[Grant]:
    """What a service must be allowed: what shared.bus, shared.outbox and shared.inbox do with Kafka."""
    who = principal(service)
    own = {TOPICS[service], dead_letter_topic(service)}
    return (
        {Grant(who, operation, "topic", topic) for topic in own for operation in ("Write", "Describe")}
        | {Grant(who, operation, "topic", topic) for topic in consumed for operation in ("Read", "Describe")}
        # The consumer groups are csm.<service>.<epoch>, one per broker log (shared.inbox); the
        # epoch is read, and written by the first service to find the log without one (shared.bus).
        | {Grant(who, "Read", "group", f"csm.{service}.", "prefixed")}
        | {Grant(who, operation, "topic", EPOCH_TOPIC) for operation in ("Read", "Write", "Describe")}
    )


def compose_grants() -> set[Grant]:
    script = INIT_SCRIPT.read_text()
    assert re.search(r"acl\(\) \{[^}]*/opt/kafka/bin/kafka-acls\.sh [^}]*--add \"\$@\"", script), (
        "acl is kafka-acls.sh --add"
    )
    grants: set[Grant] = set()
    for line in script.splitlines():
        if not line.startswith("acl "):
            continue
        words = shlex.split(line)[1:]
        options: dict[str, list[str]] = {}
        for flag, value in zip(words[::2], words[1::2], strict=True):
            options.setdefault(flag, []).append(value)
        assert set(options) <= {
            "--allow-principal",
            "--operation",
            "--topic",
            "--group",
            "--resource-pattern-type",
        }
        (who,) = options["--allow-principal"]
        pattern = options.get("--resource-pattern-type", ["literal"])[0]
        resources = [("topic", name) for name in options.get("--topic", [])]
        resources += [("group", name) for name in options.get("--group", [])]
        grants |= {
            Grant(who, operation, kind, name, pattern)
            for operation in options["--operation"]
            for kind, name in resources
        }
    assert grants, "no acl lines found: the test would pass vacuously"
    return grants


def k8s_grants() -> set[Grant]:
    grants: set[Grant] = set()
    for user in k8s_documents("kafka-users.yaml"):
        for rule in user["spec"]["authorization"]["acls"]:
            resource = rule["resource"]
            pattern = {"literal": "literal", "prefix": "prefixed"}[resource.get("patternType", "literal")]
            grants |= {
                Grant(
                    f"User:{user['metadata']['name']}",
                    operation,
                    resource["type"],
                    resource.get("name", ""),
                    pattern,
                )
                for operation in rule["operations"]
            }
    return grants


def writes(grants: set[Grant], who: str) -> set[str]:
    return {grant.name for grant in grants if grant.principal == who and grant.operation in ("Write", "All")}


def assert_each_service_writes_only_its_own_topics(grants: set[Grant], consumed: dict[str, set[str]]) -> None:
    for service in SERVICES:
        assert writes(grants, principal(service)) == {
            TOPICS[service],
            dead_letter_topic(service),
            EPOCH_TOPIC,
        }
        assert {grant for grant in grants if grant.principal == principal(service)} == needed(
            service, consumed[service]
        ), service
    # Nothing broader than a named topic is ever writable, by anyone.
    assert [
        grant for grant in grants if grant.operation in ("Write", "All") and grant.pattern != "literal"
    ] == []
    assert [grant for grant in grants if grant.name == "*" or grant.operation == "All"] == []


def compose_env(service: str) -> dict[str, str]:
    environment: dict[str, str] = COMPOSE["services"][service].get("environment", {})
    return environment


def interpolated(value: str, given: dict[str, str]) -> str:
    """``value`` as docker compose would make it, with ``given`` for the variables it requires."""

    def variable(match: re.Match[str]) -> str:
        name, kind, default = match.group(1), match.group(2), match.group(3)
        return default if kind in (":-", "-") else given.setdefault(name, secrets.token_hex(32))

    return re.sub(r"\$\{(\w+)(:\?|:-|-)([^}]*)\}", variable, value)


def test_each_service_in_compose_is_its_own_kafka_principal() -> None:
    script = INIT_SCRIPT.read_text()
    init = compose_env("kafka-init")
    usernames, passwords = set(), set()
    for service in SERVICES:
        environment = compose_env(service)
        assert environment["CSM_KAFKA_SECURITY_PROTOCOL"] in ("SASL_PLAINTEXT", "SASL_SSL")
        assert environment["CSM_KAFKA_SASL_MECHANISM"].startswith("SCRAM-")
        username = environment["CSM_KAFKA_SASL_USERNAME"]
        assert f"User:{username}" == principal(service)
        # The password is the one kafka-init gives that user: the same variable, never a literal.
        password = re.fullmatch(
            r"\$\{(CSM_KAFKA_\w+_PASSWORD):\?[^}]*\}", environment["CSM_KAFKA_SASL_PASSWORD"]
        )
        assert password, environment["CSM_KAFKA_SASL_PASSWORD"]
        created = re.search(rf'^user {re.escape(username)} "\$(\w+)"$', script, re.MULTILINE)
        assert created, f"kafka-init does not create {username}"
        assert init[created.group(1)].startswith("${" + password.group(1) + ":?")
        usernames.add(username)
        passwords.add(password.group(1))
    assert len(usernames) == len(passwords) == len(SERVICES)
    # The super user stays with the broker and kafka-init.
    assert "admin" not in {
        env.get("CSM_KAFKA_SASL_USERNAME") for env in map(compose_env, COMPOSE["services"])
    }


def test_the_compose_broker_authenticates_every_connection_and_allows_only_what_acls_allow() -> None:
    kafka = compose_env("kafka")
    protocols = dict(entry.split(":") for entry in kafka["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert set(protocols.values()) == {"SASL_PLAINTEXT"}, "no listener without authentication"
    assert {listener.split("://")[0] for listener in kafka["KAFKA_LISTENERS"].split(",")} == set(protocols)
    assert "SCRAM-SHA-512" in kafka["KAFKA_SASL_ENABLED_MECHANISMS"].split(",")
    assert kafka["KAFKA_AUTHORIZER_CLASS_NAME"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert kafka["KAFKA_SUPER_USERS"] == "User:admin"
    assert kafka["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    depends = COMPOSE["services"]["topics"]["depends_on"]
    assert depends["kafka-init"]["condition"] == "service_completed_successfully"
    assert COMPOSE["services"]["kafka-init"]["image"] == COMPOSE["services"]["kafka"]["image"]


def test_compose_acls_let_each_service_write_only_its_own_topics(consumed: dict[str, set[str]]) -> None:
    grants = compose_grants()
    assert_each_service_writes_only_its_own_topics(grants, consumed)
    # The `csm topics` step may create csm's topics (prefixed csm.) and do nothing else.
    assert {grant for grant in grants if grant.principal == "User:csm-topics"} == {
        Grant("User:csm-topics", operation, "topic", "csm.", "prefixed")
        for operation in ("Create", "Describe")
    }
    assert compose_env("topics")["CSM_KAFKA_SASL_USERNAME"] == "csm-topics"
    assert {grant.principal for grant in grants} == {"User:csm-topics", *map(principal, SERVICES)}
    # Every topic named is one `csm topics` creates.
    created = {*TOPICS.values(), *(dead_letter_topic(name) for name in SERVICES), EPOCH_TOPIC}
    assert {
        grant.name for grant in grants if grant.resource == "topic" and grant.pattern == "literal"
    } <= created


def test_kubernetes_kafka_users_let_each_service_write_only_its_own_topics(
    consumed: dict[str, set[str]],
) -> None:
    grants = k8s_grants()
    assert_each_service_writes_only_its_own_topics(grants, consumed)
    assert {grant.principal for grant in grants} == set(map(principal, SERVICES))
    topics = {doc["spec"]["topicName"] for doc in k8s_documents("kafka-topics.yaml")}
    assert {grant.name for grant in grants if grant.resource == "topic"} <= topics
    (cluster,) = {
        doc["metadata"]["labels"]["strimzi.io/cluster"] for doc in k8s_documents("kafka-topics.yaml")
    }
    for user in k8s_documents("kafka-users.yaml"):
        assert user["apiVersion"] == "kafka.strimzi.io/v1beta2" and user["kind"] == "KafkaUser"
        assert user["metadata"]["labels"]["strimzi.io/cluster"] == cluster
        assert user["spec"]["authentication"]["type"] == "scram-sha-512"
        assert user["spec"]["authorization"]["type"] == "simple"
    assert "kafka-users.yaml" in yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]


@pytest.mark.parametrize("service", list(SERVICES))
def test_each_kubernetes_deployment_is_its_kafka_user(service: str) -> None:
    (container,) = containers(f"{service}.yaml")
    env = {variable["name"]: variable for variable in container["env"]}
    user = f"csm-{service}"
    assert user in {doc["metadata"]["name"] for doc in k8s_documents("kafka-users.yaml")}
    assert env["CSM_KAFKA_SECURITY_PROTOCOL"]["value"] == "SASL_SSL"
    assert env["CSM_KAFKA_SASL_MECHANISM"]["value"] == "SCRAM-SHA-512"
    assert env["CSM_KAFKA_SASL_USERNAME"]["value"] == user
    # Strimzi's User Operator puts the password in a Secret named after the KafkaUser, key `password`.
    assert env["CSM_KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": user, "key": "password"}
    # The CA file is in a mounted Secret volume.
    cafile = Path(env["CSM_KAFKA_SSL_CAFILE"]["value"])
    (mount,) = [mount for mount in container["volumeMounts"] if Path(mount["mountPath"]) == cafile.parent]
    (deployment, _) = k8s_documents(f"{service}.yaml")
    (volume,) = [v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"]]
    assert cafile.name in {item["path"] for item in volume["secret"]["items"]}
    assert "CSM_KAFKA_BOOTSTRAP" in k8s_documents("config.yaml")[0]["data"]


def test_the_deployments_kafka_settings_are_accepted_in_production(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Each csm process of docker-compose.yml and deploy/k8s loads its settings as it would there."""
    given: dict[str, str] = {}
    for name, spec in COMPOSE["services"].items():
        if spec.get("command", [""])[0] != "csm":
            continue
        with monkeypatch.context() as patch:
            for variable, value in spec["environment"].items():
                patch.setenv(variable, interpolated(str(value), given))
            common = SERVICES[name].settings().common if name in SERVICES else CommonSettings()
            assert common.env == "production", name

    ca = tmp_path / "ca.crt"
    ca.write_text("a CA certificate, in the pod\n")
    shared = {
        **k8s_documents("config.yaml")[0]["data"],
        **k8s_documents("secret.example.yaml")[0]["stringData"],
    }
    for name in ("migrate-job.yaml", *(f"{service}.yaml" for service in SERVICES)):
        (container,) = containers(name)
        with monkeypatch.context() as patch:
            for variable, value in shared.items():
                patch.setenv(variable, value)
            for variable in container.get("env", []):
                value = variable.get("value", secrets.token_hex(32))
                patch.setenv(
                    variable["name"], str(ca) if variable["name"] == "CSM_KAFKA_SSL_CAFILE" else value
                )
            assert CommonSettings().env == "production", name


# The console: port 8000 as `make up` serves it, in front of the four services, with its own secrets.
PROVIDER = {
    "CSM_OIDC_ISSUER": "https://sso.example.com/realms/acme",
    "CSM_OIDC_AUDIENCE": "csm-console",
    "CSM_CONSOLE_OIDC_CLIENT_ID": "csm-console",
}


def service_urls(environment: dict[str, str]) -> dict[str, str]:
    return {name: environment[f"CSM_CONSOLE_{name.upper()}_URL"] for name in SERVICES}


def test_compose_runs_the_console_in_front_of_the_four_services() -> None:
    console = COMPOSE["services"]["console"]
    port = ConsoleSettings.model_fields["port"].default
    assert console["image"] == "csm:latest"
    assert console["command"] == ["csm", "console", "--host", "0.0.0.0"]
    assert console["ports"] == [f"{port}:{port}"]
    assert f"127.0.0.1:{port}/readyz" in " ".join(console["healthcheck"]["test"])
    assert set(console["depends_on"]) >= set(SERVICES)
    for name, url in service_urls(console["environment"]).items():
        service_port = SERVICES[name].settings.model_fields["port"].default
        assert url == f"http://{name}:{service_port}"
        assert COMPOSE["services"][name]["ports"][0] == f"{service_port}:{service_port}"
    # It talks to neither Kafka nor a database of its own; the services share its identity provider.
    environment = console["environment"]
    assert not [variable for variable in environment if variable.startswith("CSM_KAFKA_SASL")]
    assert environment["CSM_OIDC_ISSUER"] == compose_env("customer")["CSM_OIDC_ISSUER"]
    assert environment["CSM_CONSOLE_SESSION_SECRET"].startswith("${CSM_CONSOLE_SESSION_SECRET:?")


def test_the_kubernetes_console_reaches_each_service_by_its_service_name() -> None:
    _, k8s_service = k8s_documents("console.yaml")
    (container,) = containers("console.yaml")
    port = ConsoleSettings.model_fields["port"].default
    assert container["command"] == ["csm", "console", "--host", "0.0.0.0"]
    assert container["ports"][0]["containerPort"] == port
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert k8s_service["spec"]["ports"][0]["port"] == port
    assert "console.yaml" in yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]
    env = {variable["name"]: variable.get("value") for variable in container["env"]}
    for name, url in service_urls(env).items():
        _, target = k8s_documents(f"{name}.yaml")
        assert url == f"http://{target['metadata']['name']}:{target['spec']['ports'][0]['port']}"
    # Its own Secret, not the services' one that holds the database URLs.
    secrets_from = {source["secretRef"]["name"] for source in container["envFrom"] if "secretRef" in source}
    assert secrets_from == {"csm-console"}
    [console_secret] = [
        doc for doc in k8s_documents("secret.example.yaml") if doc["metadata"]["name"] == "csm-console"
    ]
    assert "CSM_CONSOLE_SESSION_SECRET" in console_secret["stringData"]


def test_the_deployed_console_starts_in_production_only_with_the_identity_provider(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As docker-compose.yml and deploy/k8s give its settings: refused without the provider, which
    production needs (no development sign-in there), and accepted once the operator names it."""
    given: dict[str, str] = {}
    compose = {k: interpolated(str(v), given) for k, v in compose_env("console").items()}
    k8s = {
        **k8s_documents("config.yaml")[0]["data"],
        **next(d for d in k8s_documents("secret.example.yaml") if d["metadata"]["name"] == "csm-console")[
            "stringData"
        ],
        "CSM_JWT_SECRET": secrets.token_hex(32),
        **{
            variable["name"]: variable["value"]
            for variable in containers("console.yaml")[0]["env"]
            if "value" in variable
        },
    }
    k8s["CSM_CONSOLE_SESSION_SECRET"] = secrets.token_hex(32)
    for environment in (compose, k8s):
        with monkeypatch.context() as patch:
            for variable in [v for v in os.environ if v.startswith("CSM_")]:
                patch.delenv(variable)
            for variable, value in environment.items():
                patch.setenv(variable, value)
            patch.delenv("CSM_OIDC_ISSUER", raising=False)
            patch.delenv("CSM_OIDC_AUDIENCE", raising=False)
            with pytest.raises(ValueError, match="CSM_OIDC_ISSUER and CSM_CONSOLE_OIDC_CLIENT_ID"):
                ConsoleSettings()
            for variable, value in PROVIDER.items():
                patch.setenv(variable, value)
            settings = ConsoleSettings()
            assert settings.common.env == "production" and settings.single_sign_on
            assert not settings.development_sign_in
