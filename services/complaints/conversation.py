"""A complaint's conversation: the customer's messages in, the agents' replies out, staff notes.

A reply is staged as ``complaint.replied`` for notify to send on the customer's channel, with the
Message-IDs that keep it in the customer's mail thread; the first reply is the first response.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.complaints import clocks as sla_clocks
from services.complaints import mail
from services.complaints.models import Complaint, ConversationMessage
from services.complaints.service import SOURCE, Actor, get, move, policy_of
from services.complaints.workflow import AWAITING_RESPONSE, Status
from shared.events.complaints import ComplaintChannel, ComplaintReplied, ReplyThread
from shared.outbox import stage
from shared.pagination import keyset_page


class Kind:
    customer = "customer"
    reply = "reply"
    note = "note"


# What a reply is titled when the customer never wrote (a complaint taken by phone).
FALLBACK_SUBJECT = "您的投诉 Your complaint"


async def messages(
    *, session: AsyncSession, complaint_id: uuid.UUID, staff: bool, limit: int, cursor: str | None
) -> tuple[list[ConversationMessage], str | None]:
    """Oldest first; internal notes only for staff."""
    await get(session=session, complaint_id=complaint_id)
    query = sa.select(ConversationMessage).where(ConversationMessage.complaint_id == complaint_id)
    if not staff:
        query = query.where(ConversationMessage.kind != Kind.note)
    return await keyset_page(
        query, session=session, order=[ConversationMessage.position], limit=limit, cursor=cursor
    )


async def next_position(complaint_id: uuid.UUID, *, session: AsyncSession) -> int:
    """Where the next message of a complaint's conversation goes (the complaint is locked by the caller)."""
    last = await session.scalar(
        sa.select(sa.func.max(ConversationMessage.position)).where(
            ConversationMessage.complaint_id == complaint_id
        )
    )
    return 0 if last is None else last + 1


async def _mail_thread(complaint_id: uuid.UUID, *, session: AsyncSession) -> tuple[list[str], str | None]:
    """The Message-IDs of the conversation so far, oldest first, and the customer's last subject."""
    rows = (
        await session.execute(
            sa.select(ConversationMessage.message_id, ConversationMessage.kind, ConversationMessage.subject)
            .where(
                ConversationMessage.complaint_id == complaint_id,
                ConversationMessage.kind != Kind.note,
                ConversationMessage.message_id.is_not(None),
            )
            .order_by(ConversationMessage.position)
        )
    ).all()
    subjects = [subject for _, kind, subject in rows if kind == Kind.customer and subject]
    return [message_id for message_id, _, _ in rows if message_id], subjects[-1] if subjects else None


async def reply(
    *,
    session: AsyncSession,
    complaint_id: uuid.UUID,
    body: str,
    subject: str | None,
    actor: Actor,
    mail_address: str,
    now: datetime,
    currency: str,
) -> ConversationMessage:
    """Answer the customer. A complaint still awaiting its first response is acknowledged by it."""
    complaint = await get(session=session, complaint_id=complaint_id, lock=True)
    earlier, answered = await _mail_thread(complaint.id, session=session)
    in_reply_to, references = mail.thread_after(earlier)
    reply_id = uuid.uuid4()
    title = mail.tagged(subject, complaint.id) if subject else None
    entry = ConversationMessage(
        id=reply_id,
        complaint_id=complaint.id,
        position=await next_position(complaint.id, session=session),
        customer_id=complaint.customer_id,
        kind=Kind.reply,
        message_id=mail.new_message_id(reply_id, mail_address),
        in_reply_to=in_reply_to,
        references=list(references),
        sender=actor.subject,
        subject=title or mail.reply_subject(answered, complaint.id, fallback=FALLBACK_SUBJECT),
        body=body,
        attachments=[],
        at=now,
    )
    session.add(entry)
    if Status(complaint.status) in AWAITING_RESPONSE:
        move(complaint, Status.acknowledged, session=session, actor=actor, reason="replied", now=now)
        await _refresh(complaint, session=session, now=now, currency=currency)
    complaint.updated_at = now
    assert entry.message_id is not None and entry.subject is not None
    stage(
        ComplaintReplied(
            customer_id=complaint.customer_id,
            complaint_id=complaint.id,
            reply_id=reply_id,
            channel=ComplaintChannel(complaint.channel),
            subject=entry.subject,
            body=body,
            thread=ReplyThread(message_id=entry.message_id, in_reply_to=in_reply_to, references=references),
            replied_by=actor.subject,
            replied_at=now,
        ),
        session=session,
        source=SOURCE,
        time=now,
    )
    await session.flush()
    return entry


async def note(
    *, session: AsyncSession, complaint_id: uuid.UUID, body: str, actor: Actor, now: datetime
) -> ConversationMessage:
    """A note for staff only: it never leaves csm."""
    complaint = await get(session=session, complaint_id=complaint_id, lock=True)
    entry = ConversationMessage(
        complaint_id=complaint.id,
        position=await next_position(complaint.id, session=session),
        customer_id=complaint.customer_id,
        kind=Kind.note,
        sender=actor.subject,
        body=body,
        attachments=[],
        references=[],
        at=now,
    )
    session.add(entry)
    await session.flush()
    return entry


async def customer_wrote(
    complaint: Complaint, *, session: AsyncSession, now: datetime, currency: str
) -> None:
    """The customer answered: a complaint waiting on them is worked on again and its clock runs."""
    if Status(complaint.status) is Status.waiting_on_customer:
        actor = Actor(subject=f"customer:{complaint.customer_id}", staff=False)
        move(
            complaint, Status.in_progress, session=session, actor=actor, reason="the customer wrote", now=now
        )
        await _refresh(complaint, session=session, now=now, currency=currency)


async def _refresh(complaint: Complaint, *, session: AsyncSession, now: datetime, currency: str) -> None:
    await session.flush()
    await sla_clocks.refresh(
        session=session,
        complaint=complaint,
        policy=await policy_of(complaint, session=session, currency=currency),
        now=now,
    )
