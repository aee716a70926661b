"""Escalation up the configurable ladder (front line, supervisor, manager, key-account director):
by the scanner when a promise is broken, or by hand when a dispute goes beyond one's authority."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.complaints import clocks as sla_clocks
from services.complaints import directory
from services.complaints.errors import AtTopOfLadder, ComplaintNotOpen
from services.complaints.models import Complaint, Escalation
from services.complaints.policy import FIRST_OWNER, ComplaintPolicy
from services.complaints.service import SOURCE, get, policy_of
from services.complaints.workflow import Status
from shared.events.complaints import ComplaintEscalated, SlaTarget
from shared.outbox import stage
from shared.pagination import keyset_page


async def escalate(
    *,
    session: AsyncSession,
    complaint: Complaint,
    policy: ComplaintPolicy,
    actor: str,
    reason: str,
    now: datetime,
    target: SlaTarget | None = None,
) -> Escalation:
    """Climb one rung of the ladder now; AtTopOfLadder at the top. Used by staff and by the scanner."""
    above = policy.next_level(complaint.escalation_level, key_account=complaint.key_account)
    if above is None:
        raise AtTopOfLadder(policy.escalation[complaint.escalation_level].name)
    level = policy.escalation[above]
    must_act = (
        complaint.first_owner
        if level.must_act == FIRST_OWNER
        else await directory.who_must_act(session=session, name=level.must_act)
    )
    complaint.escalation_level, complaint.escalated_at, complaint.escalation_due_at = above, now, None
    complaint.updated_at = now
    escalation = Escalation(
        complaint_id=complaint.id,
        level=above,
        level_name=level.name,
        must_act=must_act,
        reason=reason,
        actor=actor,
        at=now,
    )
    session.add(escalation)
    stage(
        ComplaintEscalated(
            customer_id=complaint.customer_id,
            complaint_id=complaint.id,
            level=above,
            level_name=level.name,
            must_act=must_act,
            reason=reason,
            escalated_at=now,
            first_owner=complaint.first_owner,
            tier=sla_clocks.tier_of(complaint),
            target=target,
        ),
        session=session,
        source=SOURCE,
        time=now,
    )
    return escalation


async def escalate_by_hand(
    *, session: AsyncSession, complaint_id: uuid.UUID, actor: str, reason: str, now: datetime, currency: str
) -> Escalation:
    complaint = await get(session=session, complaint_id=complaint_id, lock=True)
    if Status(complaint.status) in (Status.resolved, Status.closed):
        raise ComplaintNotOpen(complaint.status, "cannot be escalated")
    policy = await policy_of(complaint, session=session, currency=currency)
    escalation = await escalate(
        session=session, complaint=complaint, policy=policy, actor=actor, reason=reason, now=now
    )
    await sla_clocks.refresh(session=session, complaint=complaint, policy=policy, now=now)
    return escalation


async def escalations_of(
    *, session: AsyncSession, complaint_id: uuid.UUID, limit: int, cursor: str | None
) -> tuple[list[Escalation], str | None]:
    await get(session=session, complaint_id=complaint_id)
    return await keyset_page(
        sa.select(Escalation).where(Escalation.complaint_id == complaint_id),
        session=session,
        order=[Escalation.level],
        limit=limit,
        cursor=cursor,
    )
