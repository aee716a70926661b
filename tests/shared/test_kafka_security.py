"""Kafka security settings: what they refuse (anywhere, and in production), that the password is never
shown, and the options every aiokafka client is built with."""

from __future__ import annotations

import ast
import secrets
import ssl
import subprocess
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import ValidationError

from shared.kafka_security import security_options
from shared.settings import CommonSettings
from tests.shared.certificates import Certificates, make_certificates

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct-horse-battery-staple-7f3a9"
PRODUCTION: dict[str, Any] = {"env": "production", "jwt_secret": secrets.token_hex(32)}


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certificates"))


def scram(**overrides: Any) -> CommonSettings:
    given: dict[str, Any] = {
        "kafka_security_protocol": "SASL_PLAINTEXT",
        "kafka_sasl_username": "csm-customer",
        "kafka_sasl_password": PASSWORD,
    }
    return CommonSettings(**{**given, **overrides})


def refused(match: str, **settings: Any) -> str:
    """The message of the refusal, checked not to show the password."""
    with pytest.raises(ValidationError, match=match) as refusal:
        CommonSettings(**settings)
    assert PASSWORD not in str(refusal.value), "a refused setting is never echoed"
    return str(refusal.value)


def common_name(certificate: dict[str, Any]) -> str:
    return next((value for ((key, value),) in certificate["subject"] if key == "commonName"), "")


def test_plaintext_is_the_default_and_adds_nothing_to_the_clients() -> None:
    assert security_options(CommonSettings()) == {"security_protocol": "PLAINTEXT"}


async def test_sasl_gives_every_client_its_mechanism_username_and_password() -> None:
    options = security_options(scram(kafka_sasl_mechanism="SCRAM-SHA-256"))
    assert options == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "csm-customer",
        "sasl_plain_password": PASSWORD,
    }
    # aiokafka checks its security arguments when a client is made; all three kinds take these.
    producer = AIOKafkaProducer(bootstrap_servers="127.0.0.1:9", **options)
    consumer = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:9", **options)
    admin = AIOKafkaAdminClient(bootstrap_servers="127.0.0.1:9", **options)
    await producer.stop()
    await consumer.stop()
    await admin.close()


@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
@pytest.mark.parametrize(
    "given", [{}, {"kafka_sasl_username": "csm-customer"}, {"kafka_sasl_password": PASSWORD}]
)
def test_a_sasl_protocol_needs_both_a_username_and_a_password(protocol: str, given: dict[str, str]) -> None:
    refused(
        "needs CSM_KAFKA_SASL_USERNAME and CSM_KAFKA_SASL_PASSWORD", kafka_security_protocol=protocol, **given
    )


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SSL"])
def test_credentials_without_a_sasl_protocol_are_refused_rather_than_ignored(protocol: str) -> None:
    refused(
        f"used only with SASL_SSL or SASL_PLAINTEXT, and CSM_KAFKA_SECURITY_PROTOCOL is {protocol}",
        kafka_security_protocol=protocol,
        kafka_sasl_username="csm-customer",
        kafka_sasl_password=PASSWORD,
    )


def test_mutual_tls_needs_both_the_certificate_and_its_key(certificates: Certificates) -> None:
    tls: dict[str, Any] = {"kafka_security_protocol": "SSL", "kafka_ssl_cafile": certificates.ca}
    refused(
        "needs both CSM_KAFKA_SSL_CERTFILE and CSM_KAFKA_SSL_KEYFILE",
        **tls,
        kafka_ssl_certfile=certificates.client_cert,
    )
    refused(
        "needs both CSM_KAFKA_SSL_CERTFILE and CSM_KAFKA_SSL_KEYFILE",
        **tls,
        kafka_ssl_keyfile=certificates.client_key,
    )
    refused("KEY_PASSWORD is given without CSM_KAFKA_SSL_KEYFILE", **tls, kafka_ssl_key_password=PASSWORD)
    CommonSettings(
        **tls, kafka_ssl_certfile=certificates.client_cert, kafka_ssl_keyfile=certificates.client_key
    )


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SASL_PLAINTEXT"])
def test_tls_files_without_a_tls_protocol_are_refused_rather_than_ignored(
    protocol: str, certificates: Certificates
) -> None:
    credentials = (
        {"kafka_sasl_username": "csm-customer", "kafka_sasl_password": PASSWORD} if "SASL" in protocol else {}
    )
    refused(
        "used only with SSL or SASL_SSL",
        kafka_security_protocol=protocol,
        kafka_ssl_cafile=certificates.ca,
        **credentials,
    )


def test_a_tls_file_that_is_not_there_is_refused_when_the_settings_load(tmp_path: Path) -> None:
    refused("kafka_ssl_cafile", kafka_security_protocol="SSL", kafka_ssl_cafile=tmp_path / "no-such-ca.pem")


def test_production_refuses_plaintext_unless_it_is_said_to_be_meant(certificates: Certificates) -> None:
    refused("PLAINTEXT .* is refused in production", **PRODUCTION)
    CommonSettings(**PRODUCTION, kafka_allow_plaintext=True)
    CommonSettings(env="development")
    # Every other protocol authenticates or encrypts, and is taken.
    CommonSettings(**PRODUCTION, kafka_security_protocol="SSL", kafka_ssl_cafile=certificates.ca)
    scram(**PRODUCTION)
    scram(**PRODUCTION, kafka_security_protocol="SASL_SSL")


def test_production_refuses_a_plain_password_over_an_unencrypted_connection() -> None:
    readable: dict[str, Any] = {
        "kafka_security_protocol": "SASL_PLAINTEXT",
        "kafka_sasl_mechanism": "PLAIN",
        "kafka_sasl_username": "csm-customer",
        "kafka_sasl_password": PASSWORD,
    }
    refused("SASL PLAIN over SASL_PLAINTEXT sends the Kafka password readable", **PRODUCTION, **readable)
    CommonSettings(**readable)
    CommonSettings(**PRODUCTION, **{**readable, "kafka_security_protocol": "SASL_SSL"})


def test_the_password_is_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = scram()
    for shown in (repr(settings), str(settings), settings.model_dump_json()):
        assert PASSWORD not in shown
    # Nor when a refused combination is read from the environment.
    monkeypatch.setenv("CSM_KAFKA_SASL_USERNAME", "csm-customer")
    monkeypatch.setenv("CSM_KAFKA_SASL_PASSWORD", PASSWORD)
    refused("used only with SASL_SSL or SASL_PLAINTEXT")


def test_the_settings_are_read_from_the_documented_variables(
    monkeypatch: pytest.MonkeyPatch, certificates: Certificates
) -> None:
    for variable, value in {
        "CSM_KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
        "CSM_KAFKA_SASL_MECHANISM": "scram-sha-512",
        "CSM_KAFKA_SASL_USERNAME": "csm-notify",
        "CSM_KAFKA_SASL_PASSWORD": PASSWORD,
        "CSM_KAFKA_SSL_CAFILE": str(certificates.ca),
        # A blank variable, as a template leaves it, is no setting.
        "CSM_KAFKA_SSL_CERTFILE": "",
        "CSM_KAFKA_SSL_KEYFILE": "",
        "CSM_KAFKA_SSL_CHECK_HOSTNAME": "false",
    }.items():
        monkeypatch.setenv(variable, value)
    settings = CommonSettings()
    assert settings.kafka_security_protocol == "SASL_SSL" and settings.kafka_sasl_mechanism == "SCRAM-SHA-512"
    assert settings.kafka_sasl_username == "csm-notify"
    assert (
        settings.kafka_sasl_password is not None
        and settings.kafka_sasl_password.get_secret_value() == PASSWORD
    )
    assert settings.kafka_ssl_cafile == certificates.ca and settings.kafka_ssl_certfile is None
    assert settings.kafka_ssl_check_hostname is False


def test_tls_trusts_the_configured_ca_and_checks_the_brokers_name(certificates: Certificates) -> None:
    options = security_options(
        CommonSettings(kafka_security_protocol="SSL", kafka_ssl_cafile=certificates.ca)
    )
    assert set(options) == {"security_protocol", "ssl_context"}
    context: ssl.SSLContext = options["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert [common_name(ca) for ca in context.get_ca_certs()] == ["csm-test-ca"]

    # Without a CA file the system's trust store decides, and the test CA is not in it.
    system = security_options(CommonSettings(kafka_security_protocol="SSL"))["ssl_context"]
    assert "csm-test-ca" not in [common_name(ca) for ca in system.get_ca_certs()]
    assert system.verify_mode == ssl.CERT_REQUIRED


def test_the_name_check_can_be_turned_off_but_never_the_chain(certificates: Certificates) -> None:
    context = security_options(
        CommonSettings(
            kafka_security_protocol="SSL", kafka_ssl_cafile=certificates.ca, kafka_ssl_check_hostname=False
        )
    )["ssl_context"]
    assert not context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED


def test_sasl_over_tls_gives_both(certificates: Certificates) -> None:
    options = security_options(scram(kafka_security_protocol="SASL_SSL", kafka_ssl_cafile=certificates.ca))
    assert options["security_protocol"] == "SASL_SSL" and options["sasl_plain_password"] == PASSWORD
    assert [common_name(ca) for ca in options["ssl_context"].get_ca_certs()] == ["csm-test-ca"]


def test_mutual_tls_loads_the_client_certificate_with_its_key(certificates: Certificates) -> None:
    tls: dict[str, Any] = {"kafka_security_protocol": "SSL", "kafka_ssl_cafile": certificates.ca}
    security_options(
        CommonSettings(
            **tls, kafka_ssl_certfile=certificates.client_cert, kafka_ssl_keyfile=certificates.client_key
        )
    )
    # The pair is really loaded: a key that belongs to another certificate is refused.
    with pytest.raises(ssl.SSLError):
        security_options(
            CommonSettings(
                **tls, kafka_ssl_certfile=certificates.client_cert, kafka_ssl_keyfile=certificates.server_key
            )
        )


def test_an_encrypted_key_is_opened_with_its_passphrase_and_never_by_asking(
    certificates: Certificates, tmp_path: Path
) -> None:
    encrypted = tmp_path / "client-encrypted.key"
    subprocess.run(
        ["openssl", "pkey", "-in", str(certificates.client_key), "-out", str(encrypted), "-aes256",
         "-passout", f"pass:{PASSWORD}"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    tls: dict[str, Any] = {
        "kafka_security_protocol": "SSL",
        "kafka_ssl_cafile": certificates.ca,
        "kafka_ssl_certfile": certificates.client_cert,
        "kafka_ssl_keyfile": encrypted,
    }
    security_options(CommonSettings(**tls, kafka_ssl_key_password=PASSWORD))
    # Without the passphrase it fails at once (OpenSSL would otherwise prompt on a terminal).
    with pytest.raises(ssl.SSLError):
        security_options(CommonSettings(**tls))


def test_every_kafka_client_csm_builds_gets_the_security_options() -> None:
    clients = {"AIOKafkaProducer", "AIOKafkaConsumer", "AIOKafkaAdminClient"}

    def name(node: ast.expr) -> str:
        return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""

    built: list[tuple[str, bool]] = []
    for path in sorted([*(ROOT / "shared").rglob("*.py"), *(ROOT / "services").rglob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and name(node.func) in clients:
                secured = any(
                    keyword.arg is None
                    and isinstance(keyword.value, ast.Call)
                    and name(keyword.value.func) == "security_options"
                    for keyword in node.keywords
                )
                built.append((f"{path.relative_to(ROOT)}:{node.lineno}", secured))
    assert len(built) >= 4, built  # the bus's producer, epoch reader and admin, and the inbox's consumer
    assert [where for where, secured in built if not secured] == []
