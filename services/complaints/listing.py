"""Reading complaints: the API's view of them, lists with filters, and pages of their histories."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.complaints.models import Complaint, SlaClock, Transition
from services.complaints.schemas import ClockRead, ComplaintRead
from services.complaints.service import get, policy_of
from services.complaints.workflow import Status
from shared.events.complaints import AttachmentRef, SlaTarget
from shared.events.segmentation import Tier
from shared.money import from_minor
from shared.pagination import keyset_page


async def to_read(
    complaints: Sequence[Complaint], *, session: AsyncSession, currency: str
) -> list[ComplaintRead]:
    """The API's view of complaints, with the promises of their current cycles."""
    by_key: dict[tuple[uuid.UUID, int], list[SlaClock]] = {}
    if complaints:
        rows = await session.scalars(
            sa.select(SlaClock).where(SlaClock.complaint_id.in_([c.id for c in complaints]))
        )
        for clock in rows.all():
            by_key.setdefault((clock.complaint_id, clock.cycle), []).append(clock)
    reads = []
    for complaint in complaints:
        policy = await policy_of(complaint, session=session, currency=currency)
        reads.append(
            read_of(complaint, by_key.get((complaint.id, complaint.cycle), []), currency=policy.currency)
        )
    return reads


_ORDER = {target.value: index for index, target in enumerate(SlaTarget)}


def read_of(complaint: Complaint, clocks: Iterable[SlaClock], *, currency: str) -> ComplaintRead:
    """The API's view of one complaint, given the clocks of its current cycle and its policy's currency."""
    return ComplaintRead.model_validate(
        {
            **{column.key: getattr(complaint, column.key) for column in Complaint.__table__.c},
            "attachments": [AttachmentRef.model_validate(a) for a in complaint.attachments],
            "compensation": from_minor(complaint.compensation_minor),
            "currency": currency,
            "clocks": [
                ClockRead.model_validate(clock)
                for clock in sorted(clocks, key=lambda clock: _ORDER[clock.target])
            ],
        }
    )


@dataclass(frozen=True)
class ComplaintFilter:
    first_owner: str | None = None
    assignee: str | None = None
    customer_id: uuid.UUID | None = None
    status: Status | None = None
    open: bool | None = None
    tier: Tier | None = None
    category: str | None = None
    channel: str | None = None
    severity: str | None = None
    opened_from: datetime | None = None
    opened_before: datetime | None = None

    def clauses(self) -> list[sa.ColumnElement[bool]]:
        equal = {
            Complaint.first_owner: self.first_owner,
            Complaint.assignee: self.assignee,
            Complaint.customer_id: self.customer_id,
            Complaint.status: self.status,
            Complaint.tier: self.tier,
            Complaint.category: self.category,
            Complaint.channel: self.channel,
            Complaint.severity: self.severity,
        }
        clauses: list[sa.ColumnElement[bool]] = [
            column == value for column, value in equal.items() if value is not None
        ]
        if self.open is not None:
            is_open = Complaint.status.not_in([Status.resolved.value, Status.closed.value])
            clauses.append(is_open if self.open else sa.not_(is_open))
        if self.opened_from is not None:
            clauses.append(Complaint.opened_at >= self.opened_from)
        if self.opened_before is not None:
            clauses.append(Complaint.opened_at < self.opened_before)
        return clauses


async def list_complaints(
    *, session: AsyncSession, where: ComplaintFilter, limit: int, cursor: str | None
) -> tuple[list[Complaint], str | None]:
    """Newest first, by keyset on (opened_at, id)."""
    return await keyset_page(
        sa.select(Complaint).where(*where.clauses()),
        session=session,
        order=[Complaint.opened_at, Complaint.id],
        descending=True,
        limit=limit,
        cursor=cursor,
    )


async def transitions_of(
    *, session: AsyncSession, complaint_id: uuid.UUID, limit: int, cursor: str | None
) -> tuple[list[Transition], str | None]:
    await get(session=session, complaint_id=complaint_id)
    return await keyset_page(
        sa.select(Transition).where(Transition.complaint_id == complaint_id),
        session=session,
        order=[Transition.step],
        limit=limit,
        cursor=cursor,
    )
