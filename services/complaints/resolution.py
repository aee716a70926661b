"""Resolution and reopening: what was done, why it happened, whether the promise was kept; and a new
cycle when the customer is not satisfied."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.complaints import clocks as sla_clocks
from services.complaints.errors import CompensationPending, UnknownRootCause
from services.complaints.models import Compensation, Complaint
from services.complaints.schemas import ResolutionCreate
from services.complaints.service import SOURCE, Actor, get, move, policy_of
from services.complaints.workflow import PAUSED, Status
from shared.events.complaints import ComplaintReopened, ComplaintResolved
from shared.money import from_minor
from shared.outbox import stage


async def resolve(
    *,
    session: AsyncSession,
    complaint_id: uuid.UUID,
    resolution_in: ResolutionCreate,
    actor: Actor,
    now: datetime,
    currency: str,
) -> Complaint:
    complaint = await get(session=session, complaint_id=complaint_id, lock=True)
    policy = await policy_of(complaint, session=session, currency=currency)
    if resolution_in.root_cause not in policy.root_causes:
        raise UnknownRootCause(policy.root_causes)
    pending = await session.scalar(
        sa.select(sa.func.count())
        .select_from(Compensation)
        .where(Compensation.complaint_id == complaint.id, Compensation.status == "pending")
    )
    if pending:
        raise CompensationPending()
    history = await sla_clocks.history_of(complaint.id, session=session)
    move(complaint, Status.resolved, session=session, actor=actor, reason=resolution_in.summary, now=now)
    first_contact = resolution_in.first_contact_resolution
    if first_contact is None:
        waited = any(status in PAUSED for status, _ in history)
        first_contact = (
            actor.subject == complaint.first_owner
            and complaint.escalation_level == 0
            and complaint.reopen_count == 0
            and not waited
        )
    complaint.resolved_at = now
    complaint.resolution_summary = resolution_in.summary
    complaint.root_cause = resolution_in.root_cause
    complaint.first_contact_resolution = first_contact
    clocks = await sla_clocks.refresh(
        session=session,
        complaint=complaint,
        policy=policy,
        now=now,
        history=[*history, (Status.resolved, now)],
    )
    complaint.within_sla = sla_clocks.kept_all(clocks, at=now)
    stage(
        ComplaintResolved(
            customer_id=complaint.customer_id,
            complaint_id=complaint.id,
            category=complaint.category,
            severity=complaint.severity,
            tier=sla_clocks.tier_of(complaint),
            first_owner=complaint.first_owner,
            root_cause=complaint.root_cause,
            compensation=from_minor(complaint.compensation_minor),
            currency=policy.currency,
            first_contact_resolution=first_contact,
            within_sla=complaint.within_sla,
            resolved_at=now,
        ),
        session=session,
        source=SOURCE,
        time=now,
    )
    await session.flush()
    return complaint


async def reopen(
    *, session: AsyncSession, complaint: Complaint, reason: str, actor: Actor, now: datetime, currency: str
) -> Complaint:
    """Start a new cycle: the customer is owed a response and a resolution again."""
    move(complaint, Status.reopened, session=session, actor=actor, reason=reason, now=now)
    complaint.cycle += 1
    complaint.reopen_count += 1
    complaint.first_response_at = complaint.resolved_at = complaint.closed_at = None
    complaint.first_contact_resolution = complaint.within_sla = None
    complaint.escalation_due_at = None
    await session.flush()
    await sla_clocks.refresh(
        session=session,
        complaint=complaint,
        policy=await policy_of(complaint, session=session, currency=currency),
        now=now,
    )
    stage(
        ComplaintReopened(
            customer_id=complaint.customer_id, complaint_id=complaint.id, reason=reason, reopened_at=now
        ),
        session=session,
        source=SOURCE,
        time=now,
    )
    return complaint


async def reopen_by_id(
    *, session: AsyncSession, complaint_id: uuid.UUID, reason: str, actor: Actor, now: datetime, currency: str
) -> Complaint:
    complaint = await get(session=session, complaint_id=complaint_id, lock=True)
    return await reopen(
        session=session, complaint=complaint, reason=reason, actor=actor, now=now, currency=currency
    )
