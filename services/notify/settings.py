"""Settings of the notify service (prefix ``CSM_NOTIFY_``).

These are the plumbing: where the mail server and the SMS provider are, how hard to retry.
The practice's figures (quiet hours, the marketing cap, delays, offers) are policy and
playbooks, kept in the database and changed over the API at run time.
"""

from __future__ import annotations

from pydantic import Field, IPvAnyNetwork, SecretStr
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings, sqlite_url


class NotifySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CSM_NOTIFY_", extra="ignore")

    database_url: str = Field(default_factory=lambda: sqlite_url("notify"))
    port: int = 8004
    # A complaint's acknowledgement should leave at once. The embedded broker holds an empty fetch
    # this long even when a record arrives meanwhile, so it is the event's wait before notify sees
    # it (half of it on average): 5 ms costs an idle consumer some 200 small fetches a second.
    consumer_fetch_max_wait_ms: int = Field(default=5, ge=1, le=30_000)

    # E-mail over SMTP. No host, no e-mail channel: such messages go to the next channel.
    smtp_host: str | None = "127.0.0.1"
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    # "starttls", "tls" (implicit, port 465) or "none" (a local relay or mail catcher).
    smtp_security: str = Field(default="none", pattern=r"^(none|starttls|tls)$")
    smtp_timeout_seconds: float = Field(default=30.0, gt=0)
    # Connections kept open to the server; messages go out over them in parallel.
    smtp_connections: int = Field(default=4, ge=1, le=64)
    mail_from: str = "service@csm.example.com"
    mail_from_name: str = "客户服务 Customer Service"

    # SMS through a provider's HTTP API (see services/notify/channels.py). No URL, no SMS channel.
    sms_api_url: str | None = None
    sms_api_key: SecretStr | None = None
    sms_sender_id: str = "CSM"

    http_timeout_seconds: float = Field(default=10.0, gt=0)
    # Networks webhooks may reach although they are not public (e.g. ["10.20.0.0/16"] for an
    # internal chat bridge); everything else must be a public address (see webhook_targets).
    webhook_allowed_networks: list[IPvAnyNetwork] = Field(default_factory=list)
    # Links in messages (surveys, preferences) start with this.
    public_base_url: str = "https://service.csm.example.com"

    # The dispatcher: how many messages it claims at once, how many sends may be in flight, how
    # long a claim lasts before another worker may take the message over (a worker that died
    # mid-send), how often it looks.
    dispatch_batch_size: int = Field(default=200, ge=1, le=5000)
    dispatch_concurrency: int = Field(default=256, ge=1, le=4096)
    send_lease_seconds: float = Field(default=120.0, gt=0)
    # Seconds before each retry of a message whose send failed for a reason that may pass;
    # after the last one the message is failed for good.
    send_retry_backoff: tuple[float, ...] = (30.0, 120.0, 600.0, 1800.0, 7200.0)
    scan_poll_seconds: float = Field(default=1.0, gt=0)
    announcement_batch_size: int = Field(default=2000, ge=1, le=50_000)
