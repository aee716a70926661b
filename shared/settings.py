"""Settings shared by every service, and the base each service's own settings extend.

Shared values (broker, secrets, environment) use the prefix ``CSM_``; each service
reads its own values (database URL, port) under ``CSM_<SERVICE>_``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

import limits
from pydantic import Field, FilePath, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Known to everyone who reads this file: fine on a laptop, refused in production.
DEVELOPMENT_JWT_SECRET = "csm-development-secret-not-for-production-use"

Environment = Literal["development", "test", "production"]

# How csm's Kafka clients reach the brokers (see shared.kafka_security and the README, "Kafka security").
KafkaSecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
KafkaSaslMechanism = Literal["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"]


# An origin as a browser sends it in the Origin header: scheme, host (a name, IPv4 or [IPv6]), port.
_ORIGIN = re.compile(r"https?://([a-z0-9.-]+|\[[0-9a-f:.]+\])(:[0-9]{1,5})?")


def var_dir() -> Path:
    """Where the embedded defaults keep their files: the same for every command, wherever it runs.

    ``CSM_VAR_DIR`` if set; else ``var/`` of the project csm runs from (a checkout); else, for an
    installed package, ``$XDG_DATA_HOME/csm`` (``~/.local/share/csm``).
    """
    if configured := os.environ.get("CSM_VAR_DIR"):
        return Path(configured).expanduser().resolve()
    project = Path(__file__).resolve().parents[1]
    if (project / "pyproject.toml").is_file():
        return project / "var"
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "csm"


def sqlite_url(name: str) -> str:
    """The embedded default database ``name``: a SQLite file in ``var_dir()``."""
    return f"sqlite+aiosqlite:///{var_dir() / name}.db"


# Connections a process keeps open to its database, and how many more it may open for a moment.
# The pool closes a connection it takes back while it keeps ``POOL_SIZE`` idle ones, so a process that
# serves more requests at once than it keeps opens and closes a connection (a TCP handshake, TLS
# negotiation and asyncpg's setup on PostgreSQL; a thread and the pragmas on SQLite) for most of the
# requests above that number: keep enough for the requests a process serves at once (see the README).
POOL_SIZE = 20
MAX_OVERFLOW = 10


class CommonSettings(BaseSettings):
    """What all four services must agree on."""

    # A refused setting is never echoed back: the secret is among them.
    model_config = SettingsConfigDict(env_prefix="CSM_", extra="ignore", hide_input_in_errors=True)

    env: Environment = "development"
    kafka_bootstrap: str = "127.0.0.1:9092"
    # Put before every topic and consumer group name, so that several environments can share a cluster.
    topic_prefix: str = Field(default="", pattern=r"^[A-Za-z0-9._-]*$")
    # Partitions of each topic the services create: the most consumer processes of one service that
    # can share its work. 12 splits evenly among 1, 2, 3, 4 or 6 of them (see CONSUMER_PROCESSES).
    kafka_partitions: int = Field(default=12, ge=1, le=1000)
    kafka_create_topics: bool = True
    # Copies of each topic the services create: 3 on a production cluster (see the README).
    kafka_replication_factor: int = Field(default=1, ge=1, le=10)
    # How often every service checks that the broker's log is still the one it writes to.
    kafka_epoch_check_seconds: float = Field(default=2.0, gt=0)
    # Half of this is how long a group join waits for other members; short for tests.
    kafka_session_timeout_ms: int = Field(default=10_000, ge=1_000)
    kafka_heartbeat_interval_ms: int = Field(default=3_000, ge=100)
    # Where the customers' keys live that seal personal data in events (shared.sealing): one store
    # every service reaches (a PostgreSQL database in production; see the README on erasure).
    keys_database_url: str = Field(default_factory=lambda: sqlite_url("keys"))
    jwt_secret: SecretStr = SecretStr(DEVELOPMENT_JWT_SECRET)
    jwt_issuer: str = "csm"
    # Tokens name who they are for; a token for another audience (another system that shares the
    # issuer) is refused.
    jwt_audience: str = "csm"
    # The longest a token may live (its exp minus its iat): a stolen token stops working soon.
    jwt_max_lifetime_hours: float = Field(default=24.0, gt=0, le=24 * 30)
    # The company's reporting currency: purchases, refunds and compensation are in it.
    currency: str = Field(default="CNY", pattern=r"^[A-Z]{3}$")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Requests each client address and each token may make per service (see shared.ratelimit),
    # in the notation of the ``limits`` library; failed authentication is counted per address.
    rate_limits_enabled: bool = True
    rate_limit_storage: str = Field(default="memory://", pattern=r"^(memory|redis|rediss)://")
    rate_limit_per_address: str = "6000/minute"
    rate_limit_per_token: str = "3000/minute"
    rate_limit_failed_auth: str = "20/minute"
    # Single sign-on (shared.oidc): tokens from the company's OpenID Connect provider, besides the local
    # (HS256) ones. Without an issuer only local tokens are accepted. The keys come from the provider's
    # JWKS, discovered from <issuer>/.well-known/openid-configuration unless a URL is given.
    oidc_issuer: str = ""
    # Provider tokens must be for this audience (the client or API id csm is registered under there).
    oidc_audience: str = ""
    oidc_jwks_url: str = ""
    # The claim that carries the csm role: a string or a list (the highest staff role counts), reached
    # by a dotted path such as realm_access.roles (Keycloak).
    oidc_role_claim: str = Field(default="csm_role", min_length=1)
    # Origins of front-end apps allowed to call the APIs from a browser (shared.cors); none by default.
    cors_origins: list[str] = Field(default_factory=list)
    # Kafka security: TLS (with a client certificate for mutual TLS) and SASL (SCRAM or PLAIN).
    kafka_security_protocol: KafkaSecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: KafkaSaslMechanism = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    # PEM files: the CA that signed the brokers' certificates (without one, the system's trust
    # store), and this client's certificate and key for mutual TLS (the key's passphrase if it has one).
    kafka_ssl_cafile: FilePath | None = None
    kafka_ssl_certfile: FilePath | None = None
    kafka_ssl_keyfile: FilePath | None = None
    kafka_ssl_key_password: SecretStr | None = None
    # Off only for a broker whose certificate does not name the address it is reached at.
    kafka_ssl_check_hostname: bool = True
    # Production refuses PLAINTEXT (no authentication, no encryption) unless this says it is meant.
    kafka_allow_plaintext: bool = False
    # Tracing (shared.tracing): off unless an OTLP/HTTP collector is named, e.g. http://otel-collector:4318.
    otel_endpoint: str | None = Field(default=None, pattern=r"^https?://")
    # The share of traces recorded where a trace starts (an HTTP request, a scanner's pass);
    # everything downstream follows that decision, so a trace is whole or absent.
    otel_sampling_ratio: float = Field(default=1.0, ge=0.0, le=1.0)
    # One JSON object per line for log collectors, or plain text for a person at a terminal.
    log_format: Literal["json", "text"] = "json"
    # Objects a service process allocates before Python's cyclic collector walks its young generation
    # (shared.process.tune_gc); 0 keeps Python's own 700.
    gc_young_threshold: int = Field(default=50_000, ge=0)
    # Connections each service process keeps open to its database, and how many more it may open for a
    # moment (shared.db): keep as many as the requests and workers a process runs at once.
    database_pool_size: int = Field(default=POOL_SIZE, ge=1, le=1000)
    database_max_overflow: int = Field(default=MAX_OVERFLOW, ge=0, le=1000)

    @field_validator("otel_endpoint", mode="before")
    @classmethod
    def _blank_endpoint_is_off(cls, value: object) -> object:
        # CSM_OTEL_ENDPOINT= (a template's blank) turns tracing off rather than failing the pattern.
        return None if value == "" else value

    @field_validator("rate_limit_per_address", "rate_limit_per_token", "rate_limit_failed_auth")
    @classmethod
    def _a_rate(cls, value: str) -> str:
        try:
            limits.parse(value)
        except ValueError as error:
            raise ValueError(f"not a rate such as '20/minute': {error}") from None
        return value

    @field_validator("kafka_security_protocol", "kafka_sasl_mechanism", mode="before")
    @classmethod
    def _upper_case(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator(
        "kafka_sasl_username",
        "kafka_sasl_password",
        "kafka_ssl_cafile",
        "kafka_ssl_certfile",
        "kafka_ssl_keyfile",
        "kafka_ssl_key_password",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # An environment variable set to nothing (a template's blank) means the setting is not given.
        return None if value == "" else value

    @model_validator(mode="after")
    def _refuse_weak_secret_in_production(self) -> CommonSettings:
        if self.env == "production":
            secret = self.jwt_secret.get_secret_value()
            if secret == DEVELOPMENT_JWT_SECRET:
                raise ValueError("CSM_JWT_SECRET is the development secret; set a real one in production")
            if len(secret) < 32:
                raise ValueError("CSM_JWT_SECRET must be at least 32 characters in production")
            if len(set(secret)) < 10:
                raise ValueError(
                    "CSM_JWT_SECRET is too easy to guess (fewer than 10 different characters); "
                    "generate one, e.g. with openssl rand -hex 32"
                )
        return self

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, origins: list[str]) -> list[str]:
        # A browser sends an origin as scheme://host[:port], lower case and without a slash: an entry
        # written another way would silently never match.
        normalised = []
        for origin in origins:
            written = origin.strip().rstrip("/").lower()
            if not _ORIGIN.fullmatch(written):
                raise ValueError(
                    f"{origin!r} is not an origin: write scheme://host[:port], such as "
                    "https://desk.example.com (each allowed origin is listed; there is no wildcard)"
                )
            normalised.append(written)
        return normalised

    @model_validator(mode="after")
    def _oidc_is_whole(self) -> CommonSettings:
        if not self.oidc_issuer:
            if self.oidc_audience or self.oidc_jwks_url:
                raise ValueError("CSM_OIDC_AUDIENCE and CSM_OIDC_JWKS_URL are used only with CSM_OIDC_ISSUER")
            return self
        if not self.oidc_audience:
            raise ValueError(
                "CSM_OIDC_ISSUER needs CSM_OIDC_AUDIENCE: the audience provider tokens must name"
            )
        for name, url in (("CSM_OIDC_ISSUER", self.oidc_issuer), ("CSM_OIDC_JWKS_URL", self.oidc_jwks_url)):
            if url and not url.startswith(("https://", "http://")):
                raise ValueError(f"{name} must be an http(s) URL")
            # Whoever can change the keys in transit can sign in as anyone.
            if url and self.env == "production" and not url.startswith("https://"):
                raise ValueError(f"{name} must be an https URL in production")
        return self

    @model_validator(mode="after")
    def _kafka_security_is_whole(self) -> CommonSettings:
        """Refuse Kafka security settings that would be ignored, or would connect with less than asked.

        The messages name variables, never values: the password is among them.
        """
        protocol = self.kafka_security_protocol
        sasl = protocol in ("SASL_PLAINTEXT", "SASL_SSL")
        tls = protocol in ("SSL", "SASL_SSL")
        password = self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password else ""
        if sasl and not (self.kafka_sasl_username and password):
            raise ValueError(
                f"CSM_KAFKA_SECURITY_PROTOCOL={protocol} needs CSM_KAFKA_SASL_USERNAME and "
                "CSM_KAFKA_SASL_PASSWORD"
            )
        if not sasl and (self.kafka_sasl_username or password):
            raise ValueError(
                f"CSM_KAFKA_SASL_USERNAME and CSM_KAFKA_SASL_PASSWORD are used only with SASL_SSL or "
                f"SASL_PLAINTEXT, and CSM_KAFKA_SECURITY_PROTOCOL is {protocol}"
            )
        if (self.kafka_ssl_certfile is None) != (self.kafka_ssl_keyfile is None):
            raise ValueError("mutual TLS needs both CSM_KAFKA_SSL_CERTFILE and CSM_KAFKA_SSL_KEYFILE")
        if self.kafka_ssl_key_password is not None and self.kafka_ssl_keyfile is None:
            raise ValueError("CSM_KAFKA_SSL_KEY_PASSWORD is given without CSM_KAFKA_SSL_KEYFILE")
        if not tls and (self.kafka_ssl_cafile or self.kafka_ssl_certfile):
            raise ValueError(
                f"CSM_KAFKA_SSL_CAFILE, _CERTFILE and _KEYFILE are used only with SSL or SASL_SSL, and "
                f"CSM_KAFKA_SECURITY_PROTOCOL is {protocol}"
            )
        if self.env == "production":
            if protocol == "PLAINTEXT" and not self.kafka_allow_plaintext:
                raise ValueError(
                    "CSM_KAFKA_SECURITY_PROTOCOL=PLAINTEXT (no authentication, no encryption) is refused in "
                    "production; use SASL_SSL, SSL or SASL_PLAINTEXT, or set CSM_KAFKA_ALLOW_PLAINTEXT=true "
                    "if that is meant"
                )
            if protocol == "SASL_PLAINTEXT" and self.kafka_sasl_mechanism == "PLAIN":
                raise ValueError(
                    "SASL PLAIN over SASL_PLAINTEXT sends the Kafka password readable; in production use "
                    "CSM_KAFKA_SASL_MECHANISM=SCRAM-SHA-512 (or SCRAM-SHA-256), or SASL_SSL"
                )
        return self


class ServiceSettings(BaseSettings):
    """Settings every service has; subclasses set the env prefix and defaults."""

    model_config = SettingsConfigDict(extra="ignore")

    common: CommonSettings = Field(default_factory=CommonSettings)
    database_url: str
    host: str = "127.0.0.1"
    port: int
    # Run the outbox relay, consumers and scanners in this process (turn off to scale the
    # HTTP tier separately from the workers).
    run_workers: bool = True
    # How many processes consume the service's events, as one consumer group (PostgreSQL only: SQLite
    # has one writer). The first runs the API, the relay and the scheduled workers too; the others
    # (``consumer_only``) run the consumer alone. More than the topics' partitions would idle.
    consumer_processes: int = Field(default=1, ge=1, le=64)
    consumer_only: bool = False
    # The largest request body a route takes (see shared.limits); streamed uploads have their own.
    max_body_bytes: int = Field(default=1_000_000, ge=1_024)
    outbox_batch_size: int = Field(default=500, ge=1)
    outbox_poll_seconds: float = Field(default=1.0, gt=0)
    # Published events are kept this long so a broker that lost its log can be refilled.
    outbox_retention_days: int = Field(default=7, ge=1)
    consumer_batch_size: int = Field(default=500, ge=1)
    # Seconds to wait before each retry of a failing event; then it is dead-lettered.
    consumer_retry_backoff: tuple[float, ...] = (0.5, 2.0, 8.0)
    # The longest a fetch may wait at the broker for new records (see shared.inbox): short, so that
    # an event is taken as soon as it arrives; under load the fetches return full at once anyway.
    consumer_fetch_max_wait_ms: int = Field(default=20, ge=1, le=30_000)

    @model_validator(mode="after")
    def _one_writer_on_sqlite(self) -> ServiceSettings:
        if self.database_url.startswith("sqlite") and (self.consumer_processes > 1 or self.consumer_only):
            prefix = str(self.model_config.get("env_prefix", "CSM_<SERVICE>_"))
            raise ValueError(
                f"{prefix}CONSUMER_PROCESSES={self.consumer_processes}"
                f"{f' ({prefix}CONSUMER_ONLY)' if self.consumer_only else ''} needs PostgreSQL: a SQLite "
                f"database has one writer, so a second consumer process would only wait for the first; "
                f"set {prefix}DATABASE_URL to a PostgreSQL database, or run one consumer process"
            )
        return self
