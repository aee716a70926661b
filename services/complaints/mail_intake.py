"""What happens to a mail that reaches the complaints mailbox, whichever way it came (SMTP or IMAP).

In this order: a Message-ID already stored is a repeat and changes nothing; a machine's message (an
auto-reply, a bounce, a list) is dropped; a reply (In-Reply-To / References naming a message of a
conversation, or the complaint's reference in the subject from one of its customer's addresses)
joins that conversation; a mail from a known customer opens a complaint with channel ``email``; any
other mail waits in the triage list for a person to place it.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.complaints import conversation, mail, service
from services.complaints.conversation import Kind
from services.complaints.errors import MailNotInTriage
from services.complaints.models import Complaint, ConversationMessage, CustomerAddress, MailAttachment
from services.complaints.schemas import ComplaintCreate
from services.complaints.settings import ComplaintsSettings
from shared.events.complaints import ComplaintCategory, ComplaintChannel, SenderIntroduced, Severity
from shared.outbox import stage
from shared.pagination import keyset_page

log = logging.getLogger("csm.complaints.mail")

DESCRIPTION_LIMIT = 10_000


class Outcome(StrEnum):
    opened = "opened"
    joined = "joined"
    triaged = "triaged"
    repeat = "repeat"
    ignored = "ignored"


@dataclass(frozen=True)
class Received:
    outcome: Outcome
    complaint_id: uuid.UUID | None = None
    reason: str | None = None


async def receive(
    raw: bytes,
    *,
    session: AsyncSession,
    envelope_sender: str | None,
    settings: ComplaintsSettings,
    now: datetime,
) -> Received:
    """File one mail (see the module's docstring for what becomes of it)."""
    inbound = mail.parse(raw, envelope_sender=envelope_sender)
    if await stored(inbound.message_id, session=session):
        return Received(Outcome.repeat)
    if inbound.automatic is None and inbound.sender == settings.mail_address.lower():
        inbound = replace(inbound, automatic="sent from the service's own address")
    if inbound.automatic is not None:
        log.info("mail %s ignored: %s", inbound.message_id, inbound.automatic)
        return Received(Outcome.ignored, reason=inbound.automatic)
    customers = await customers_of(inbound.sender, session=session)
    complaint = await _answered(inbound, customers, session=session)
    entry = ConversationMessage(
        id=uuid.uuid4(),
        position=0,
        kind=Kind.customer,
        message_id=inbound.message_id,
        in_reply_to=inbound.in_reply_to,
        references=list(inbound.references),
        sender=inbound.sender,
        subject=inbound.subject[:998] or None,
        body=inbound.body,
        at=now,
    )
    if complaint is not None:
        entry.complaint_id, entry.customer_id = complaint.id, complaint.customer_id
        entry.position = await conversation.next_position(complaint.id, session=session)
        entry.attachments = _keep_attachments(inbound, entry, session=session, settings=settings)
        session.add(entry)
        complaint.updated_at = now
        currency = settings.common.currency
        await conversation.customer_wrote(complaint, session=session, now=now, currency=currency)
        await session.flush()
        return Received(Outcome.joined, complaint.id)
    if not customers and inbound.sender and settings.mail_unknown_sender == "new_customer":
        customers = [introduce(inbound.sender, inbound.sender_name, session=session, now=now)]
    if len(customers) == 1:
        entry.customer_id = customers[0]
        entry.attachments = _keep_attachments(inbound, entry, session=session, settings=settings)
        session.add(entry)
        opened = await open_from(entry, settings=settings, session=session, now=now)
        return Received(Outcome.opened, opened.id)
    entry.triage = "several customers share the address" if customers else "unknown sender"
    entry.attachments = _keep_attachments(inbound, entry, session=session, settings=settings)
    session.add(entry)
    await session.flush()
    return Received(Outcome.triaged, reason=entry.triage)


async def stored(message_id: str, *, session: AsyncSession) -> bool:
    found = await session.scalar(
        sa.select(ConversationMessage.id).where(ConversationMessage.message_id == message_id)
    )
    return found is not None


def introduce(address: str, name: str | None, *, session: AsyncSession, now: datetime) -> uuid.UUID:
    """Make an unknown sender a customer: known here at once (their next mail finds them), and
    announced so that the customer service registers them under the same id."""
    customer_id = uuid.uuid4()
    session.add(CustomerAddress(customer_id=customer_id, source="profile", email=address))
    stage(
        SenderIntroduced(
            customer_id=customer_id, name=name or address.partition("@")[0], email=address, introduced_at=now
        ),
        session=session,
        source=service.SOURCE,
        time=now,
    )
    return customer_id


async def customers_of(address: str | None, *, session: AsyncSession) -> list[uuid.UUID]:
    """The customers who write from ``address``: its profile's or one of its named contacts'."""
    if not address:
        return []
    found = await session.scalars(
        sa.select(CustomerAddress.customer_id).where(CustomerAddress.email == address.lower()).distinct()
    )
    return sorted(found.all())


async def _answered(
    inbound: mail.Inbound, customers: list[uuid.UUID], *, session: AsyncSession
) -> Complaint | None:
    """The complaint this mail answers, if it answers one.

    A Message-ID of the conversation is enough (it cannot be guessed); a subject reference,
    eight hex digits, only counts from an address of the complaint's own customer.
    """
    if inbound.answers:
        rows = (
            await session.execute(
                sa.select(ConversationMessage.message_id, ConversationMessage.complaint_id).where(
                    ConversationMessage.message_id.in_(inbound.answers),
                    ConversationMessage.complaint_id.is_not(None),
                )
            )
        ).all()
        by_id = {message_id: complaint_id for message_id, complaint_id in rows if complaint_id is not None}
        for message_id in inbound.answers:
            if message_id in by_id:
                return await service.get(session=session, complaint_id=by_id[message_id], lock=True)
    reference = inbound.reference
    if reference is None or not customers:
        return None
    ids = (
        await session.scalars(
            sa.select(Complaint.id).where(Complaint.customer_id.in_(customers)).order_by(Complaint.opened_at)
        )
    ).all()
    matching = [complaint_id for complaint_id in ids if mail.reference_of(complaint_id) == reference]
    if not matching:
        return None
    return await service.get(session=session, complaint_id=matching[-1], lock=True)


def _keep_attachments(
    inbound: mail.Inbound,
    entry: ConversationMessage,
    *,
    session: AsyncSession,
    settings: ComplaintsSettings,
) -> list[dict[str, Any]]:
    """Files within the limits are kept and referred to; the others are named, with why they are not."""
    kept: list[dict[str, Any]] = []
    for index, attachment in enumerate(inbound.attachments):
        name = (attachment.name or "")[:200] or None
        size = len(attachment.content)
        if index >= settings.mail_max_attachments:
            kept.append({"name": name, "size": size, "refused": "too many attachments"})
            continue
        if size > settings.mail_max_attachment_bytes:
            kept.append({"name": name, "size": size, "refused": "too large"})
            continue
        stored = MailAttachment(
            id=uuid.uuid4(),
            message_id=entry.id,
            customer_id=entry.customer_id,
            name=name,
            media_type=attachment.media_type[:100],
            size=size,
            content=attachment.content,
        )
        session.add(stored)
        kept.append(
            {
                "uri": attachment_uri(settings, stored.id),
                "name": name,
                "media_type": stored.media_type,
                "size": size,
            }
        )
    return kept


def attachment_uri(settings: ComplaintsSettings, attachment_id: uuid.UUID) -> str:
    return f"{settings.public_base_url.rstrip('/')}/mail-attachments/{attachment_id}"


async def open_from(
    entry: ConversationMessage, *, settings: ComplaintsSettings, session: AsyncSession, now: datetime
) -> Complaint:
    """Open a complaint with a customer's first mail, which becomes the first message of its conversation."""
    assert entry.customer_id is not None
    text = "\n\n".join(part for part in (entry.subject, entry.body) if part) or "(an empty mail)"
    complaint_in = ComplaintCreate(
        customer_id=entry.customer_id,
        channel=ComplaintChannel.email,
        category=ComplaintCategory.other,
        severity=Severity.normal,
        description=text[:DESCRIPTION_LIMIT],
        attachments=[],
    )
    complaint, _ = await service.open_complaint(
        session=session,
        complaint_in=complaint_in,
        first_owner=settings.mail_first_owner,
        now=now,
        currency=settings.common.currency,
        source="email",
    )
    complaint.attachments = [
        {key: ref[key] for key in ("uri", "name", "media_type")} for ref in entry.attachments if "uri" in ref
    ]
    entry.complaint_id, entry.triage, entry.position = complaint.id, None, 0
    await session.flush()
    return complaint


async def place(
    *,
    session: AsyncSession,
    message_id: uuid.UUID,
    customer_id: uuid.UUID,
    settings: ComplaintsSettings,
    now: datetime,
) -> Complaint:
    """A person says whose a triaged mail is: it opens that customer's complaint."""
    entry = await session.get(ConversationMessage, message_id, with_for_update=True)
    if entry is None or entry.triage is None:
        raise MailNotInTriage(message_id)
    entry.customer_id = customer_id
    await session.execute(
        sa.update(MailAttachment).where(MailAttachment.message_id == entry.id).values(customer_id=customer_id)
    )
    return await open_from(entry, settings=settings, session=session, now=now)


async def dismiss(*, session: AsyncSession, message_id: uuid.UUID) -> None:
    """A triaged mail nobody will place (spam, a wrong address): its content and files go.

    The row stays, empty and out of the list, so that the same mail delivered again is still
    known by its Message-ID and does not come back to the list.
    """
    entry = await session.get(ConversationMessage, message_id, with_for_update=True)
    if entry is None or entry.triage is None:
        raise MailNotInTriage(message_id)
    await session.execute(sa.delete(MailAttachment).where(MailAttachment.message_id == entry.id))
    entry.triage, entry.sender, entry.subject, entry.body, entry.attachments = None, None, None, "", []
    await session.flush()


async def triaged(
    *, session: AsyncSession, limit: int, cursor: str | None
) -> tuple[list[ConversationMessage], str | None]:
    return await keyset_page(
        sa.select(ConversationMessage).where(ConversationMessage.triage.is_not(None)),
        session=session,
        order=[ConversationMessage.at, ConversationMessage.id],
        limit=limit,
        cursor=cursor,
    )
