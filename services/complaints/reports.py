"""The queries behind the analytics: the facts of the complaints opened in a window, for ``analytics``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.complaints import analytics
from services.complaints.listing import ComplaintFilter
from services.complaints.models import Complaint, SlaClock, Survey


@dataclass(frozen=True)
class Window:
    since: datetime
    until: datetime


async def figures(*, session: AsyncSession, window: Window, where: ComplaintFilter) -> dict[str, object]:
    scope = [
        *where.clauses(),
        Complaint.opened_at >= window.since,
        Complaint.opened_at <= window.until,
    ]
    rows = await session.execute(
        sa.select(
            Complaint.opened_at,
            Complaint.category,
            Complaint.channel,
            Complaint.tier,
            Complaint.root_cause,
            Complaint.first_contact_resolution,
            Complaint.resolved_at,
            Complaint.reopen_count,
        ).where(*scope)
    )
    facts = [
        analytics.ComplaintFact(
            opened_at=row.opened_at,
            category=row.category,
            channel=row.channel,
            tier=row.tier,
            root_cause=row.root_cause,
            first_contact_resolution=row.first_contact_resolution,
            ever_resolved=row.resolved_at is not None or row.reopen_count > 0,
            reopened=row.reopen_count > 0,
        )
        for row in rows
    ]
    clock_rows = await session.execute(
        sa.select(
            SlaClock.target,
            SlaClock.cycle,
            Complaint.opened_at,
            SlaClock.due_at,
            SlaClock.met_at,
            SlaClock.breached_at,
        )
        .join(Complaint, Complaint.id == SlaClock.complaint_id)
        .where(*scope)
    )
    clocks = [analytics.ClockFact(*row) for row in clock_rows]
    answers = await session.execute(
        sa.select(Survey.csat, Survey.nps, Survey.poor)
        .join(Complaint, Complaint.id == Survey.complaint_id)
        .where(*scope)
    )
    return analytics.report(
        facts, clocks, [row._tuple() for row in answers], since=window.since, until=window.until
    )
