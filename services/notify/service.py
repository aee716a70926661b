"""Recording and listing notifications; each is keyed by the event and step that caused it."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.notify.models import Notification
from shared.events import Envelope, Event
from shared.events.customer import ContactChannel, Purpose
from shared.events.notify import NotificationSent
from shared.outbox import stage

SOURCE = "/csm/notify"


async def send_in_app(
    session: AsyncSession,
    *,
    cause: Envelope[Event],
    playbook: str,
    step: str,
    purpose: Purpose,
    title: str,
    body: str,
    now: datetime,
) -> Notification | None:
    """Deliver an in-app message once per (cause, playbook, step); None if it was already sent."""
    key = f"{cause.id}:{playbook}:{step}"
    if await session.scalar(sa.select(Notification.id).where(Notification.idempotency_key == key)):
        return None
    notification = Notification(
        id=uuid.uuid4(),
        customer_id=cause.data.customer_id,
        idempotency_key=key,
        playbook=playbook,
        channel=ContactChannel.in_app.value,
        purpose=purpose.value,
        title=title,
        body=body,
        status="sent",
        cause_event_id=cause.id,
        created_at=now,
        sent_at=now,
    )
    session.add(notification)
    stage(
        session,
        NotificationSent(
            customer_id=notification.customer_id,
            notification_id=notification.id,
            channel=ContactChannel.in_app,
            purpose=purpose,
            playbook=playbook,
            step=step,
            cause_event_id=cause.id,
            sent_at=now,
        ),
        source=SOURCE,
        cause=cause.id,
        time=now,
    )
    return notification


async def list_for_customer(
    *, session: AsyncSession, customer_id: uuid.UUID, before: tuple[datetime, uuid.UUID] | None, limit: int
) -> list[Notification]:
    """Newest first."""
    query = sa.select(Notification).where(Notification.customer_id == customer_id)
    if before is not None:
        query = query.where(sa.tuple_(Notification.created_at, Notification.id) < sa.tuple_(*before))
    query = query.order_by(Notification.created_at.desc(), Notification.id.desc()).limit(limit)
    return list((await session.scalars(query)).all())
