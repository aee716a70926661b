"""Sending one claimed message on its channel, with the message's delivery id."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from services.notify.channels import (
    Email,
    SendFailed,
    SmsSender,
    SmtpSender,
    WebhookSender,
    delivery_id,
    email_bytes,
)
from services.notify.settings import NotifySettings
from shared.clock import Clock
from shared.events.customer import ContactChannel, Purpose

log = logging.getLogger("csm.notify.senders")


@dataclass(frozen=True)
class Job:
    """A claimed message, with everything the send needs (no ORM object crosses the I/O)."""

    id: uuid.UUID
    claim: uuid.UUID
    customer_id: uuid.UUID
    channel: ContactChannel
    address: str | None
    name: str | None
    title: str
    body: str
    sms_text: str | None
    language: str
    purpose: Purpose
    idempotency_key: str
    playbook: str
    step: str
    webhook_url: str | None
    webhook_secret: str | None
    created_at: datetime
    # An agent's reply on a complaint: {"message_id", "in_reply_to", "references"} (mail threading).
    thread: dict[str, Any] | None = None
    # The trace the message was made in; its send is a span of that trace.
    traceparent: str | None = None


class Senders:
    """The channel adapters of one dispatcher, with their connections."""

    def __init__(self, settings: NotifySettings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        self.smtp = SmtpSender(settings) if settings.smtp_host else None
        self.http = httpx.AsyncClient(timeout=settings.http_timeout_seconds)
        self.sms = SmsSender(settings, self.http) if settings.sms_api_url else None
        self.webhooks = WebhookSender(self.http, allowed=settings.webhook_allowed_networks)

    async def close(self) -> None:
        if self.smtp is not None:
            await self.smtp.close()
        await self.http.aclose()

    async def send(self, job: Job) -> str | SendFailed:
        """Send one message; a failure comes back as a value, so that one bad send stops nothing else."""
        try:
            if job.channel is ContactChannel.email:
                assert self.smtp is not None and job.address
                unsubscribe = None
                if job.purpose is Purpose.marketing:
                    unsubscribe = f"{self.settings.public_base_url.rstrip('/')}/preferences/{job.customer_id}"
                message = email_bytes(
                    Email(
                        recipient=job.address,
                        recipient_name=job.name,
                        subject=job.title,
                        body=job.body,
                        language=job.language,
                        idempotency_key=job.idempotency_key,
                        unsubscribe_url=unsubscribe,
                        thread=job.thread,
                    ),
                    sender=self.settings.mail_from,
                    sender_name=self.settings.mail_from_name,
                    now=self.clock.now(),
                )
                return await self.smtp.send(message, sender=self.settings.mail_from, recipient=job.address)
            if job.channel is ContactChannel.sms:
                assert self.sms is not None and job.address
                text = job.sms_text or f"{job.title} {job.body}"[:500]
                return await self.sms.send(phone=job.address, text=text, idempotency_key=job.idempotency_key)
            if job.channel is ContactChannel.webhook:
                assert self.webhooks is not None and job.webhook_url and job.webhook_secret
                payload = {
                    "type": "csm.alert",
                    "id": delivery_id(job.idempotency_key),
                    "playbook": job.playbook,
                    "step": job.step,
                    "customer_id": str(job.customer_id),
                    "title": job.title,
                    "body": job.body,
                    "language": job.language,
                    "created_at": job.created_at.isoformat(),
                }
                return await self.webhooks.send(
                    url=job.webhook_url,
                    secret=job.webhook_secret,
                    payload=payload,
                    idempotency_key=job.idempotency_key,
                )
            return SendFailed(f"cannot send on {job.channel.value}", permanent=True)
        except SendFailed as failure:
            return failure
        except Exception as error:  # a bug in an adapter must not stop the others; retried, then visible
            log.exception("sending %s on %s failed unexpectedly", job.id, job.channel.value)
            return SendFailed(f"unexpected {type(error).__name__}", permanent=False)
