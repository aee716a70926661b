"""Events the customer service follows to keep its 360 view current without calling anyone.

Tier, segment, stage and churn risk come from segmentation, open complaints from complaints, and
recent messages from notify. An event about an erased customer is dropped (nothing about them is
kept again); one about a merged duplicate is applied to the customer it was merged into.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from services.customer import service
from services.customer.models import ComplaintView, Customer, NotificationView
from services.customer.schemas import CustomerCreate
from services.customer.service import MERGED
from services.customer.settings import CustomerSettings
from services.customer.view_marks import touch
from shared.events import Envelope
from shared.events.complaints import (
    ComplaintOpened,
    ComplaintReopened,
    ComplaintResolved,
    ComplaintStatusChanged,
    SenderIntroduced,
)
from shared.events.customer import CustomerStatus
from shared.events.notify import NotificationSent
from shared.events.segmentation import RiskChanged, TierChanged
from shared.inbox import Handlers
from shared.service import Runtime

log = logging.getLogger("csm.customer.consumers")


async def _owner(customer_id: uuid.UUID, *, session: AsyncSession) -> uuid.UUID | None:
    """Whom facts about ``customer_id`` now belong to: itself, its survivor, or nobody if erased."""
    row = (
        await session.execute(
            sa.select(Customer.status, Customer.merged_into).where(Customer.id == customer_id)
        )
    ).one_or_none()
    if row is None:
        return customer_id
    if row.status == CustomerStatus.erased:
        return None
    if row.status == MERGED:
        survivor: uuid.UUID | None = row.merged_into
        return survivor
    return customer_id


async def on_tier_changed(event: Envelope[TierChanged], *, session: AsyncSession) -> None:
    change = event.data
    customer = await session.get(Customer, change.customer_id, with_for_update=True)
    # Segmentation re-tiers a survivor itself, so a merged duplicate's verdict is not carried over.
    if customer is None or customer.status in (CustomerStatus.erased, MERGED):
        return
    if customer.tier_changed_at is not None and change.changed_at < customer.tier_changed_at:
        return
    customer.tier = change.tier.value
    customer.key_account = change.key_account
    customer.segment = change.segment
    customer.value_group = change.value_group.value if change.value_group else None
    customer.loyalty_stage = change.stage.value if change.stage else None
    customer.tier_changed_at = change.changed_at


async def on_risk_changed(event: Envelope[RiskChanged], *, session: AsyncSession) -> None:
    change = event.data
    customer = await session.get(Customer, change.customer_id, with_for_update=True)
    if customer is None or customer.status in (CustomerStatus.erased, MERGED):
        return
    if customer.risk_changed_at is not None and change.changed_at < customer.risk_changed_at:
        return
    customer.churn_risk = change.risk.value
    customer.probability_alive = change.probability_alive
    customer.expected_purchases = change.expected_purchases
    customer.expected_purchases_days = change.expected_purchases_days
    customer.risk_changed_at = change.changed_at


async def on_sender_introduced(event: Envelope[SenderIntroduced], *, session: AsyncSession) -> None:
    """Complaints made an unknown mail sender a customer: register them under the id it chose."""
    sender = event.data
    if await session.get(Customer, sender.customer_id) is not None:
        return  # delivered again, or erased since: either way, not a new customer
    try:
        customer_in = CustomerCreate(name=sender.name, email=sender.email)
    except ValidationError:
        # An address the profile rules refuse: the complaint stays, under an id with no profile.
        log.warning("mail sender %s not registered: not a valid profile", sender.customer_id)
        return
    await service.register(
        session=session, customer_in=customer_in, now=sender.introduced_at, customer_id=sender.customer_id
    )


def handlers(runtime: Runtime) -> Handlers:
    settings = runtime.settings
    assert isinstance(settings, CustomerSettings)
    closed = frozenset(settings.closed_complaint_statuses)

    async def complaint(
        customer_id: uuid.UUID,
        complaint_id: uuid.UUID,
        at: datetime,
        *,
        session: AsyncSession,
        **values: object,
    ) -> None:
        owner = await _owner(customer_id, session=session)
        if owner is None:
            return
        view = await session.get(ComplaintView, complaint_id, with_for_update=True)
        if view is None:
            view = ComplaintView(
                complaint_id=complaint_id, customer_id=owner, status="new", open=True, changed_at=at
            )
            session.add(view)
        elif at < view.changed_at:
            # An older event arriving late: keep only the facts it adds, not its status.
            values = {
                k: v for k, v in values.items() if k not in ("status", "open") and getattr(view, k) is None
            }
        view.customer_id = owner
        for name, value in values.items():
            setattr(view, name, value)
        view.changed_at = max(view.changed_at, at)

    async def on_opened(event: Envelope[ComplaintOpened], *, session: AsyncSession) -> None:
        c = event.data
        await complaint(
            c.customer_id,
            c.complaint_id,
            c.opened_at,
            session=session,
            status="new",
            open=True,
            category=c.category.value,
            severity=c.severity.value,
            first_owner=c.first_owner,
            opened_at=c.opened_at,
            resolution_due_at=c.resolution_due_at,
        )

    async def on_status_changed(event: Envelope[ComplaintStatusChanged], *, session: AsyncSession) -> None:
        c = event.data
        await complaint(
            c.customer_id,
            c.complaint_id,
            c.changed_at,
            session=session,
            status=c.status,
            open=c.status not in closed,
        )

    async def on_resolved(event: Envelope[ComplaintResolved], *, session: AsyncSession) -> None:
        c = event.data
        await complaint(
            c.customer_id,
            c.complaint_id,
            c.resolved_at,
            session=session,
            status="resolved",
            open=False,
            category=c.category.value,
            severity=c.severity.value,
            first_owner=c.first_owner,
        )

    async def on_reopened(event: Envelope[ComplaintReopened], *, session: AsyncSession) -> None:
        c = event.data
        await complaint(
            c.customer_id, c.complaint_id, c.reopened_at, session=session, status="reopened", open=True
        )

    async def on_notification_sent(event: Envelope[NotificationSent], *, session: AsyncSession) -> None:
        sent = event.data
        owner = await _owner(sent.customer_id, session=session)
        if owner is None or await session.get(NotificationView, sent.notification_id) is not None:
            return
        session.add(
            NotificationView(
                notification_id=sent.notification_id,
                customer_id=owner,
                channel=sent.channel.value,
                purpose=sent.purpose.value,
                playbook=sent.playbook,
                step=sent.step,
                sent_at=sent.sent_at,
            )
        )
        await session.flush()
        # The view shows the latest few; older ones are notify's to keep.
        kept = (
            sa.select(NotificationView.notification_id)
            .where(NotificationView.customer_id == owner)
            .order_by(NotificationView.sent_at.desc(), NotificationView.notification_id.desc())
            .limit(settings.notifications_kept)
        )
        await session.execute(
            sa.delete(NotificationView).where(
                NotificationView.customer_id == owner, NotificationView.notification_id.not_in(kept)
            )
        )
        touch([owner], session=session)

    return {
        TierChanged: on_tier_changed,
        RiskChanged: on_risk_changed,
        ComplaintOpened: on_opened,
        ComplaintStatusChanged: on_status_changed,
        ComplaintResolved: on_resolved,
        ComplaintReopened: on_reopened,
        NotificationSent: on_notification_sent,
        SenderIntroduced: on_sender_introduced,
    }
