"""Settings shared by every service, and the base each service's own settings extend.

Shared values (broker, secrets, environment) use the prefix ``CSM_``; each service
reads its own values (database URL, port) under ``CSM_<SERVICE>_``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import limits
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Known to everyone who reads this file: fine on a laptop, refused in production.
DEVELOPMENT_JWT_SECRET = "csm-development-secret-not-for-production-use"

Environment = Literal["development", "test", "production"]


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


class CommonSettings(BaseSettings):
    """What all four services must agree on."""

    # A refused setting is never echoed back: the secret is among them.
    model_config = SettingsConfigDict(env_prefix="CSM_", extra="ignore", hide_input_in_errors=True)

    env: Environment = "development"
    kafka_bootstrap: str = "127.0.0.1:9092"
    # Put before every topic and consumer group name, so that several environments can share a cluster.
    topic_prefix: str = Field(default="", pattern=r"^[A-Za-z0-9._-]*$")
    kafka_partitions: int = Field(default=3, ge=1, le=1000)
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

    @field_validator("rate_limit_per_address", "rate_limit_per_token", "rate_limit_failed_auth")
    @classmethod
    def _a_rate(cls, value: str) -> str:
        try:
            limits.parse(value)
        except ValueError as error:
            raise ValueError(f"not a rate such as '20/minute': {error}") from None
        return value

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
    # The largest request body a route takes (see shared.limits); streamed uploads have their own.
    max_body_bytes: int = Field(default=1_000_000, ge=1_024)
    outbox_batch_size: int = Field(default=500, ge=1)
    outbox_poll_seconds: float = Field(default=1.0, gt=0)
    # Published events are kept this long so a broker that lost its log can be refilled.
    outbox_retention_days: int = Field(default=7, ge=1)
    consumer_batch_size: int = Field(default=500, ge=1)
    # Seconds to wait before each retry of a failing event; then it is dead-lettered.
    consumer_retry_backoff: tuple[float, ...] = (0.5, 2.0, 8.0)
    # The longest a fetch may wait at the broker for new records (see shared.inbox).
    consumer_fetch_max_wait_ms: int = Field(default=500, ge=1, le=30_000)
