"""The channels' adapters: e-mail over SMTP, SMS through a provider's HTTP API, signed webhooks.

Every send carries a *delivery id* derived from the message's idempotency key, the same on
every attempt: the e-mail's Message-ID, the SMS request's Idempotency-Key, the webhook's
``webhook-id``. A sender that dies after the receiver accepted a message and before it
recorded that sends it again after a restart; the delivery id is what lets the receiver see
the repeat for what it is (see the README, "Exactly once").
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email import base64mime
from email.header import Header
from email.message import Message
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import format_datetime, formataddr
from functools import lru_cache
from typing import Any

import aiosmtplib
import httpx

from services.notify.settings import NotifySettings
from services.notify.webhook_targets import Network, TargetRefused, resolve_and_check
from shared.events.customer import ContactChannel


def configured_channels(settings: NotifySettings) -> frozenset[ContactChannel]:
    """The channels this installation can send on: e-mail needs a server, SMS a provider."""
    channels = {ContactChannel.in_app, ContactChannel.webhook}
    if settings.smtp_host:
        channels.add(ContactChannel.email)
    if settings.sms_api_url:
        channels.add(ContactChannel.sms)
    return frozenset(channels)


class SendFailed(Exception):
    """A send that did not go through; ``permanent`` when trying again cannot help."""

    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.reason = reason[:500]
        self.permanent = permanent


def delivery_id(idempotency_key: str) -> str:
    """Stable across attempts and restarts, and reveals nothing of the key."""
    return hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]


def message_id(idempotency_key: str, sender: str) -> str:
    domain = sender.rpartition("@")[2] or "csm.invalid"
    return f"<{delivery_id(idempotency_key)}@{domain}>"


@dataclass(frozen=True)
class Email:
    recipient: str
    recipient_name: str | None
    subject: str
    body: str
    language: str
    idempotency_key: str
    unsubscribe_url: str | None = None
    # A person's reply in a thread: its Message-ID and the ones it answers (RFC 5322 3.6.4).
    thread: dict[str, Any] | None = None


# Encoded words fold themselves; a long ASCII value (a link) stays on its line, within RFC 5322's 998.
WIRE = compat32.clone(linesep="\r\n", max_line_length=998)


@lru_cache(maxsize=4096)
def _encoded(text: str, header: str) -> str:
    """A header value as RFC 2047 encoded words when it is not plain ASCII (folded after the name).

    Cached: the sender's name and an announcement's subject are the same in every message."""
    return text if text.isascii() else Header(text, "utf-8", header_name=header).encode()


def _headers(email: Email, *, sender: str, sender_name: str, now: datetime) -> list[tuple[str, str]]:
    """The message's headers in order, as ``build_email`` sets them."""
    thread = email.thread or {}
    headers = [
        ("Content-Type", 'text/plain; charset="utf-8"'),
        ("MIME-Version", "1.0"),
        ("Content-Transfer-Encoding", "base64"),
        ("From", formataddr((_encoded(sender_name, "From"), sender))),
        ("To", formataddr((_encoded(email.recipient_name or "", "To"), email.recipient))),
        ("Subject", _encoded(email.subject, "Subject")),
        ("Date", format_datetime(now)),
        ("Message-ID", thread.get("message_id") or message_id(email.idempotency_key, sender)),
    ]
    if thread.get("in_reply_to"):
        headers.append(("In-Reply-To", thread["in_reply_to"]))
    if thread.get("references"):
        headers.append(("References", " ".join(thread["references"])))
    headers.append(("Content-Language", email.language))
    if not thread:
        # RFC 3834: an automatic message, so auto-responders do not answer it. A reply in a
        # thread is a person's, and the customer's answer to it is wanted.
        headers.append(("Auto-Submitted", "auto-generated"))
    if email.unsubscribe_url:
        headers.append(("List-Unsubscribe", f"<{email.unsubscribe_url}>"))
    return headers


def build_email(email: Email, *, sender: str, sender_name: str, now: datetime) -> Message:
    """A plain-text e-mail, 7-bit on the wire: encoded-word headers and a base64 UTF-8 body.

    Built with the stdlib's compat32 API (``MIMEText``, ``Header``) rather than ``EmailMessage``:
    an equivalent message for a fraction of the CPU (the modern API parses every header it is
    given). ``email_bytes`` writes the same bytes without the object, which is what a send uses.
    """
    message = MIMEText(email.body, "plain", "utf-8", policy=WIRE)
    for name, value in _headers(email, sender=sender, sender_name=sender_name, now=now)[3:]:
        message[name] = value
    return message


@lru_cache(maxsize=4096)
def _folded(name: str, value: str) -> bytes:
    return WIRE.fold_binary(name, value)


def _header_line(name: str, value: str) -> bytes:
    # A short single-line ASCII value with single spaces folds to itself ("Name: value" and CRLF);
    # anything else goes through the policy's folding, cached, since such values repeat.
    # (Printable: a control character such as U+001E breaks a line for the folder.)
    if (
        value.isascii()
        and value.isprintable()
        and len(value) < 900
        and value == value.strip()
        and "  " not in value
    ):
        return f"{name}: {value}\r\n".encode("ascii")
    return _folded(name, value)


def email_bytes(email: Email, *, sender: str, sender_name: str, now: datetime) -> bytes:
    """``build_email(...).as_bytes(policy=WIRE)``, byte for byte, at a fraction of the CPU.

    An announcement sends a hundred thousand of these: the generator folds every header again
    through ``Header`` and copies the body line by line, which cost more than the send itself.
    """
    lines = [
        _header_line(name, value)
        for name, value in _headers(email, sender=sender, sender_name=sender_name, now=now)
    ]
    body = base64mime.body_encode(email.body.encode("utf-8")).replace("\n", "\r\n")
    return b"".join(lines) + b"\r\n" + body.encode("ascii")


class SmtpSender:
    """A small pool of SMTP connections, each sending one message at a time."""

    def __init__(self, settings: NotifySettings) -> None:
        self.settings = settings
        self._idle: asyncio.Queue[aiosmtplib.SMTP] = asyncio.Queue()
        for _ in range(settings.smtp_connections):
            self._idle.put_nowait(self._client())

    def _client(self) -> aiosmtplib.SMTP:
        s = self.settings
        return aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_username,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None,
            use_tls=s.smtp_security == "tls",
            start_tls=s.smtp_security == "starttls",
            timeout=s.smtp_timeout_seconds,
        )

    async def send(self, message: bytes, *, sender: str, recipient: str) -> str:
        """Send one message, its bytes as ``email_bytes`` wrote them."""
        client = await self._idle.get()
        try:
            if not client.is_connected:
                await client.connect()
            _, reply = await client.sendmail(sender, [recipient], message)
            return reply[:200]
        except aiosmtplib.SMTPRecipientsRefused as error:
            codes = [response.code for response in error.recipients]
            raise SendFailed(
                f"recipient refused ({codes})", permanent=all(code >= 500 for code in codes)
            ) from None
        except aiosmtplib.SMTPAuthenticationError as error:
            # The operator's configuration, not the message: it goes once the login is fixed.
            await _quietly_close(client)
            raise SendFailed(f"SMTP login refused ({error.code})", permanent=False) from None
        except aiosmtplib.SMTPResponseException as error:
            await _quietly_close(client)
            raise SendFailed(f"SMTP {error.code}", permanent=error.code >= 500) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            await _quietly_close(client)
            raise SendFailed(f"SMTP: {type(error).__name__}", permanent=False) from None
        finally:
            self._idle.put_nowait(client)

    async def close(self) -> None:
        while not self._idle.empty():
            await _quietly_close(self._idle.get_nowait())


async def _quietly_close(client: aiosmtplib.SMTP) -> None:
    if client.is_connected:
        try:
            await client.quit()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            client.close()


def _http_failure(response: httpx.Response, what: str) -> SendFailed:
    # 408, 425 and 429 and server errors may pass; any other refusal will not.
    transient = response.status_code in (408, 425, 429) or response.status_code >= 500
    return SendFailed(f"{what} answered {response.status_code}", permanent=not transient)


class SmsSender:
    """SMS through a provider's JSON API: ``POST {sms_api_url}/messages``.

    The request is ``{"to": E.164 number, "text": ..., "sender": ..., "reference": ...}`` with a
    bearer key and an ``Idempotency-Key`` header; the answer is 2xx with ``{"id": ...}``. A
    provider whose API differs gets an adapter of its own behind this same ``send``.
    """

    def __init__(self, settings: NotifySettings, client: httpx.AsyncClient) -> None:
        if not settings.sms_api_url:
            raise ValueError("no SMS provider configured")
        self.url = settings.sms_api_url.rstrip("/") + "/messages"
        self.key = settings.sms_api_key.get_secret_value() if settings.sms_api_key else ""
        self.sender = settings.sms_sender_id
        self.client = client

    async def send(self, *, phone: str, text: str, idempotency_key: str) -> str:
        headers = {"Idempotency-Key": delivery_id(idempotency_key)}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        body = {"to": phone, "text": text, "sender": self.sender, "reference": delivery_id(idempotency_key)}
        try:
            response = await self.client.post(self.url, json=body, headers=headers)
        except httpx.HTTPError as error:
            raise SendFailed(f"SMS provider: {type(error).__name__}", permanent=False) from None
        if not response.is_success:
            raise _http_failure(response, "SMS provider")
        try:
            return str(response.json().get("id", ""))[:200]
        except ValueError:
            return ""


def new_webhook_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 24 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def _secret_bytes(secret: str) -> bytes:
    raw = secret.removeprefix("whsec_")
    return base64.b64decode(raw + "=" * (-len(raw) % 4))


def sign_webhook(secret: str, *, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header of the Standard Webhooks specification (HMAC-SHA256)."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(_secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


class WebhookSender:
    """POSTs JSON to a registered endpoint, signed so that the receiver can trust and de-duplicate it."""

    def __init__(self, client: httpx.AsyncClient, *, allowed: Sequence[Network] = ()) -> None:
        self.client = client
        self.allowed = allowed

    async def send(self, *, url: str, secret: str, payload: dict[str, Any], idempotency_key: str) -> str:
        try:
            # Again at send time, after resolution: a name may have been pointed elsewhere since.
            await resolve_and_check(url, self.allowed, must_resolve=True)
        except TargetRefused as refused:
            raise SendFailed(f"webhook target refused: {refused}", permanent=True) from None
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        webhook_id = delivery_id(idempotency_key)
        # Wall-clock time, not business time: it is the receiver's guard against replays.
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json; charset=utf-8",
            "webhook-id": webhook_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign_webhook(secret, webhook_id=webhook_id, timestamp=timestamp, body=body),
            "Idempotency-Key": webhook_id,
        }
        try:
            response = await self.client.post(url, content=body, headers=headers)
        except httpx.HTTPError as error:
            raise SendFailed(f"webhook: {type(error).__name__}", permanent=False) from None
        if not response.is_success:
            raise _http_failure(response, "webhook")
        return str(response.status_code)
