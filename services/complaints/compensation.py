"""Flexible authorisation (弹性授权): staff grant compensation within their role's limit at once;
above it, the offer waits for a role whose limit covers it instead of being refused.

The limit is on what one person grants on one complaint in all, not on each offer: five offers
of 199.99 by an agent whose limit is 200 grant the first and leave the rest waiting, for someone
who outranks the agent (never a peer). What a person approved of others' offers counts as
theirs. The complaint's row is locked while an offer or a decision is made, so offers sent at
the same moment are counted one after another.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.complaints import service
from services.complaints.errors import (
    BeyondAuthority,
    CompensationDecided,
    CompensationNotFound,
    ComplaintNotOpen,
    WrongCurrency,
)
from services.complaints.models import Compensation, Complaint
from services.complaints.schemas import CompensationCreate, CompensationRead
from services.complaints.workflow import Status
from shared.auth import Principal
from shared.money import from_minor, to_minor
from shared.pagination import keyset_page
from shared.roles import STAFF_RANK, Role

GRANTED, PENDING, REJECTED = "granted", "pending", "rejected"


def to_read(compensation: Compensation) -> CompensationRead:
    return CompensationRead.model_validate(
        {
            **{column.key: getattr(compensation, column.key) for column in Compensation.__table__.c},
            "amount": from_minor(compensation.amount_minor),
        }
    )


def audited(compensation: Compensation) -> dict[str, object]:
    """What the audit log keeps of a compensation: all but the reason, a free text that may name someone."""
    return to_read(compensation).model_dump(mode="json", exclude={"reason"})


async def offer(
    *,
    session: AsyncSession,
    complaint_id: uuid.UUID,
    compensation_in: CompensationCreate,
    principal: Principal,
    now: datetime,
    currency: str,
) -> Compensation:
    complaint = await service.get(session=session, complaint_id=complaint_id, lock=True)
    if Status(complaint.status) in (Status.resolved, Status.closed):
        raise ComplaintNotOpen(complaint.status, "takes no more compensation")
    policy = await service.policy_of(complaint, session=session, currency=currency)
    if compensation_in.currency != policy.currency:
        raise WrongCurrency(policy.currency)
    already = await granted_by(session=session, complaint_id=complaint.id, subject=principal.subject)
    within_authority = policy.may_grant(principal.role, already + compensation_in.amount)
    compensation = Compensation(
        id=uuid.uuid4(),
        complaint_id=complaint.id,
        amount_minor=to_minor(compensation_in.amount),
        currency=policy.currency,
        reason=compensation_in.reason,
        status=GRANTED if within_authority else PENDING,
        requested_by=principal.subject,
        requested_role=principal.role.value,
        requested_at=now,
        # Approved by someone above the person who offered it, not by a peer.
        requires_role=None
        if within_authority
        else policy.approver_for(compensation_in.amount, above=principal.role).value,
        decided_by=principal.subject if within_authority else None,
        decided_at=now if within_authority else None,
    )
    session.add(compensation)
    if within_authority:
        complaint.compensation_minor += compensation.amount_minor
    complaint.updated_at = now
    await session.flush()
    return compensation


async def granted_by(*, session: AsyncSession, complaint_id: uuid.UUID, subject: str) -> Decimal:
    """What ``subject`` has granted on the complaint so far, their own offers and their approvals."""
    total = await session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(Compensation.amount_minor), 0)).where(
            Compensation.complaint_id == complaint_id,
            Compensation.status == GRANTED,
            Compensation.decided_by == subject,
        )
    )
    return from_minor(int(total or 0))


async def decide(
    *,
    session: AsyncSession,
    compensation_id: uuid.UUID,
    approve: bool,
    principal: Principal,
    now: datetime,
    currency: str,
) -> Compensation:
    compensation = await session.get(Compensation, compensation_id, with_for_update=True)
    if compensation is None:
        raise CompensationNotFound(compensation_id)
    if compensation.status != PENDING:
        raise CompensationDecided(compensation.status)
    complaint = await service.get(session=session, complaint_id=compensation.complaint_id, lock=True)
    policy = await service.policy_of(complaint, session=session, currency=currency)
    amount = from_minor(compensation.amount_minor)
    # Deciding either way takes the authority to grant it: a rejection is as much a decision.
    already = await granted_by(session=session, complaint_id=complaint.id, subject=principal.subject)
    outranks = STAFF_RANK.get(principal.role, 0) > STAFF_RANK.get(Role(compensation.requested_role), 0)
    if not outranks or not policy.may_grant(principal.role, amount if not approve else already + amount):
        raise BeyondAuthority(
            amount, compensation.currency, needs=compensation.requires_role, has=principal.role.value
        )
    compensation.status = GRANTED if approve else REJECTED
    compensation.decided_by = principal.subject
    compensation.decided_at = now
    if approve:
        complaint.compensation_minor += compensation.amount_minor
    complaint.updated_at = now
    return compensation


async def list_compensations(
    *,
    session: AsyncSession,
    complaint_id: uuid.UUID | None,
    status: str | None,
    limit: int,
    cursor: str | None,
    first_owner: str | None = None,
) -> tuple[list[Compensation], str | None]:
    """Oldest first: the queue of offers waiting for approval is worked from its head."""
    query = sa.select(Compensation)
    if first_owner is not None:
        query = query.join(Complaint, Complaint.id == Compensation.complaint_id).where(
            Complaint.first_owner == first_owner
        )
    if complaint_id is not None:
        query = query.where(Compensation.complaint_id == complaint_id)
    if status is not None:
        query = query.where(Compensation.status == status)
    return await keyset_page(
        query, session=session, order=[Compensation.requested_at, Compensation.id], limit=limit, cursor=cursor
    )
