"""An agent's reply on a complaint, sent to the customer on the channel they complained on.

The reply is written by a person, not a playbook: no template, no marketing rules, but the same
gate (consent for service messages, the customer's channel choices) and the same dispatcher. Its
``thread`` carries the Message-IDs the complaints service chose, so that an e-mail reply lands in
the customer's thread and the customer's answer finds its way back to the complaint.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.notify.models import Contact, Notification
from services.notify.projection import insert_ignoring_duplicates
from shared.events import Envelope
from shared.events.complaints import ComplaintChannel, ComplaintReplied
from shared.events.customer import ContactChannel, Purpose

PLAYBOOK = "complaint_reply"

# The customer's channel first, then the others a reply can reach them on.
_CHANNELS: dict[ComplaintChannel, tuple[ContactChannel, ...]] = {
    ComplaintChannel.email: (ContactChannel.email, ContactChannel.in_app),
    ComplaintChannel.phone: (ContactChannel.sms, ContactChannel.email, ContactChannel.in_app),
    ComplaintChannel.app: (ContactChannel.in_app, ContactChannel.email, ContactChannel.sms),
    ComplaintChannel.chat: (ContactChannel.in_app, ContactChannel.email, ContactChannel.sms),
    ComplaintChannel.web: (ContactChannel.email, ContactChannel.in_app, ContactChannel.sms),
}
_ANY = (ContactChannel.email, ContactChannel.sms, ContactChannel.in_app)


def channels_for(channel: ComplaintChannel) -> list[str]:
    return [c.value for c in _CHANNELS.get(channel, _ANY)]


async def send_reply(
    envelope: Envelope[ComplaintReplied], *, session: AsyncSession, default_locale: str, now: datetime
) -> None:
    reply = envelope.data
    contact = await session.get(Contact, reply.customer_id)
    channels = channels_for(reply.channel)
    row: dict[str, Any] = {
        "customer_id": reply.customer_id,
        # The reply's own id: a redelivered event queues nothing twice.
        "idempotency_key": f"{PLAYBOOK}:{reply.reply_id}",
        "playbook": PLAYBOOK,
        "playbook_version": 0,
        "step": "reply",
        "channel": channels[0],
        "candidates": channels,
        "purpose": Purpose.service.value,
        "urgent": True,
        "language": (contact.locale if contact else None) or default_locale,
        "title": reply.subject[:300],
        "body": reply.body,
        "sms_text": f"{reply.subject} {reply.body}"[:500],
        "status": "pending",
        "cause_event_id": envelope.id,
        "created_at": now,
        "due_at": now,
        "attempts": 0,
        "thread": reply.thread.model_dump(mode="json"),
    }
    await session.execute(insert_ignoring_duplicates(Notification, session=session), [row])
