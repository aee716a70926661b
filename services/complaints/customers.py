"""What complaints keeps about customers: their tier (to re-target promises), the addresses they write
from (to place their mail), their erasure and merging."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.complaints import clocks as sla_clocks
from services.complaints import policy_store
from services.complaints.models import (
    Compensation,
    Complaint,
    ConversationMessage,
    CustomerAddress,
    CustomerTier,
    Escalation,
    MailAttachment,
    SlaClock,
    Survey,
    Transition,
)
from services.complaints.models import idempotency_key as idempotency_keys
from services.complaints.workflow import OPEN, Status
from shared import idempotency
from shared.events.segmentation import Tier

OPEN_STATUSES = [status.value for status in OPEN]


async def set_tier(
    *,
    session: AsyncSession,
    customer_id: uuid.UUID,
    tier: Tier,
    key_account: bool,
    now: datetime,
    currency: str,
) -> int:
    """Keep the projection, and give the customer's open complaints the promise of the new tier at once.

    Returns how many complaints were re-targeted.
    """
    projection = await session.get(CustomerTier, customer_id)
    if projection is None:
        session.add(CustomerTier(customer_id=customer_id, tier=tier.value, key_account=key_account))
    else:
        projection.tier, projection.key_account = tier.value, key_account
    return await retarget(session=session, customer_id=customer_id, now=now, currency=currency)


async def set_address(
    *, session: AsyncSession, customer_id: uuid.UUID, source: str, email: str | None
) -> None:
    """Keep the address a customer writes from (``source``: "profile" or "contact:<id>"); None forgets it."""
    await session.execute(
        sa.delete(CustomerAddress).where(
            CustomerAddress.customer_id == customer_id, CustomerAddress.source == source
        )
    )
    if email and "@" in email:
        session.add(CustomerAddress(customer_id=customer_id, source=source, email=email.strip().lower()))
    await session.flush()


async def retarget(*, session: AsyncSession, customer_id: uuid.UUID, now: datetime, currency: str) -> int:
    projection = await session.get(CustomerTier, customer_id)
    tier, key_account = (projection.tier, projection.key_account) if projection else (None, False)
    complaints = (
        await session.scalars(
            sa.select(Complaint)
            .where(Complaint.customer_id == customer_id, Complaint.status.in_(OPEN_STATUSES))
            .with_for_update()
        )
    ).all()
    if not complaints:
        return 0
    version = await policy_store.current_version(session=session)
    policy = await policy_store.at_version(version, session=session, currency=currency)
    changed = 0
    for complaint in complaints:
        if complaint.tier == tier and complaint.key_account == key_account:
            continue
        previous_tier = sla_clocks.tier_of(complaint)
        # The new promise is made under the policy in force now, counted from the opening (or reopen).
        complaint.tier, complaint.key_account, complaint.policy_version = tier, key_account, version
        complaint.updated_at = now
        clocks = await sla_clocks.refresh(session=session, complaint=complaint, policy=policy, now=now)
        if previous_tier != sla_clocks.tier_of(complaint):
            sla_clocks.announce_retarget(
                session=session,
                complaint=complaint,
                clocks=clocks,
                previous_tier=previous_tier,
                reason="the customer's tier changed",
                now=now,
            )
        changed += 1
    return changed


async def erase(*, session: AsyncSession, customer_id: uuid.UUID, now: datetime) -> None:
    """Purge what identifies or describes the person; keep the counts that management reports need.

    The customer's words, attachments, resolution notes, survey comments and the reasons staff
    wrote are blanked; open complaints are closed and their clocks stopped, without events, since
    there is no one left to serve or to tell.
    """
    ids = list(
        (await session.scalars(sa.select(Complaint.id).where(Complaint.customer_id == customer_id))).all()
    )
    await session.execute(sa.delete(CustomerTier).where(CustomerTier.customer_id == customer_id))
    addresses = list(
        (
            await session.scalars(
                sa.select(CustomerAddress.email).where(CustomerAddress.customer_id == customer_id)
            )
        ).all()
    )
    await session.execute(sa.delete(CustomerAddress).where(CustomerAddress.customer_id == customer_id))
    # Mail from their addresses still waiting in triage is theirs too.
    await session.execute(
        sa.update(ConversationMessage)
        .where(ConversationMessage.triage.is_not(None), ConversationMessage.sender.in_(addresses))
        .values(sender=None, subject=None, body="", attachments=[])
    )
    await session.execute(sa.delete(MailAttachment).where(MailAttachment.customer_id == customer_id))
    # Their mail and the replies to it: what was said goes, that something was said stays.
    await session.execute(
        sa.update(ConversationMessage)
        .where(
            sa.or_(ConversationMessage.customer_id == customer_id, ConversationMessage.complaint_id.in_(ids))
        )
        .values(sender=None, subject=None, body="", attachments=[])
    )
    if not ids:
        return
    await session.execute(
        sa.update(Complaint)
        .where(Complaint.id.in_(ids), Complaint.status.in_(OPEN_STATUSES))
        .values(status=Status.closed.value, closed_at=now, next_check_at=None, escalation_due_at=None)
    )
    await session.execute(
        sa.update(Complaint)
        .where(Complaint.id.in_(ids))
        .values(
            description="",
            desired_outcome=None,
            attachments=[],
            resolution_summary=None,
            erased_at=now,
            updated_at=now,
        )
    )
    await session.execute(sa.update(Transition).where(Transition.complaint_id.in_(ids)).values(reason=None))
    await session.execute(sa.update(Escalation).where(Escalation.complaint_id.in_(ids)).values(reason=""))
    await session.execute(sa.update(Compensation).where(Compensation.complaint_id.in_(ids)).values(reason=""))
    await session.execute(sa.update(Survey).where(Survey.complaint_id.in_(ids)).values(comment=None))
    await session.execute(
        sa.update(SlaClock)
        .where(SlaClock.complaint_id.in_(ids), SlaClock.met_at.is_(None))
        .values(due_at=None, warn_at=None)
    )
    await idempotency.forget(idempotency_keys, session=session, resource_ids=ids)


async def merge(
    *, session: AsyncSession, customer_id: uuid.UUID, merged_id: uuid.UUID, now: datetime, currency: str
) -> None:
    """``merged_id`` was a duplicate: its complaints are the survivor's and follow the survivor's tier."""
    await session.execute(
        sa.update(Complaint)
        .where(Complaint.customer_id == merged_id)
        .values(customer_id=customer_id, updated_at=now)
    )
    await session.execute(sa.delete(CustomerTier).where(CustomerTier.customer_id == merged_id))
    # The duplicate's addresses are the survivor's too; its profile address keeps a source of its own.
    await session.execute(
        sa.update(CustomerAddress)
        .where(CustomerAddress.customer_id == merged_id, CustomerAddress.source == "profile")
        .values(source=f"merged:{merged_id}")
    )
    await session.execute(
        sa.update(CustomerAddress)
        .where(CustomerAddress.customer_id == merged_id)
        .values(customer_id=customer_id)
    )
    for table in (ConversationMessage, MailAttachment):
        await session.execute(
            sa.update(table).where(table.customer_id == merged_id).values(customer_id=customer_id)
        )
    await retarget(session=session, customer_id=customer_id, now=now, currency=currency)
