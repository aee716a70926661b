from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings, sqlite_url


class ComplaintsSettings(ServiceSettings):
    """Process settings; the complaint policy itself (targets, calendars, ladder, limits) is data,
    changed at run time through ``PUT /complaint-policy``."""

    model_config = SettingsConfigDict(env_prefix="CSM_COMPLAINTS_", extra="ignore")

    database_url: str = Field(default_factory=lambda: sqlite_url("complaints"))
    port: int = 8003
    # How often the deadline scanner looks for warnings, breaches and escalations that are due.
    scan_interval_seconds: float = Field(default=5.0, gt=0)
    # Complaints one scanner claims per transaction; replicas claim disjoint batches.
    scan_batch_size: int = Field(default=200, ge=1, le=10_000)
    # How long an Idempotency-Key protects a retried POST.
    idempotency_ttl_hours: int = Field(default=24, ge=1)

    # Complaints by e-mail. The embedded SMTP listener (``csm up`` starts it on 2525) accepts
    # mail for the service mailbox on this host and port; None: no listener.
    mail_listen_host: str = "127.0.0.1"
    mail_listen_port: int | None = Field(default=None, ge=1, le=65535)
    # The address customers write to: replies' Message-IDs carry its domain, and mail from it is
    # never taken for a customer's (a loop). Notify's CSM_NOTIFY_MAIL_FROM should be the same.
    mail_address: str = "service@csm.example.com"
    # Who owns a complaint that arrived by mail until a person takes it (首问负责: the mailbox).
    mail_first_owner: str = "mailbox"
    # A mail from an address no customer has: "triage" waits for a person to place it;
    # "new_customer" makes the sender a customer (the customer service registers them) and opens
    # their complaint at once.
    mail_unknown_sender: Literal["triage", "new_customer"] = "triage"
    # Limits: a mail larger than this is refused at the door (SMTP 552); a bigger attachment is
    # left out (the message says so) and the rest of the mail is kept.
    mail_max_message_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    mail_max_attachment_bytes: int = Field(default=10 * 1024 * 1024, ge=1)
    mail_max_attachments: int = Field(default=20, ge=0, le=100)
    # IMAP polling of the company's service mailbox (production); no host, no polling. Each
    # unseen message is filed as if it came to the listener, then marked seen.
    imap_host: str | None = None
    imap_port: int = Field(default=993, ge=1, le=65535)
    # "tls" (implicit, port 993) or "none" (a server on this host or a trusted network only).
    imap_security: Literal["tls", "none"] = "tls"
    imap_username: str | None = None
    imap_password: SecretStr | None = None
    imap_folder: str = "INBOX"
    imap_poll_seconds: float = Field(default=30.0, gt=0)
    imap_timeout_seconds: float = Field(default=30.0, gt=0)
    # Where staff reach this service: links to the files that came with mail start here.
    public_base_url: str = "http://127.0.0.1:8003"
