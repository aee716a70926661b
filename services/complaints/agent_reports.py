"""The queries behind the reports per agent and per team, and their CSV export.

The period selects complaints by when they were opened, as the analytics do; the backlog is what
each person holds open now, whatever the period (a backlog belongs to a moment, not a period).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.complaints import agent_figures, analytics
from services.complaints.listing import ComplaintFilter
from services.complaints.models import Complaint, SlaClock, StaffPerson, StaffTeam, Survey
from services.complaints.reports import Window
from services.complaints.workflow import OPEN
from shared.spreadsheet import csv_text

_HOLDER = sa.func.coalesce(Complaint.assignee, Complaint.first_owner)
AGENT_COLUMNS = ("agent", "name", *agent_figures.FIGURES)
TEAM_COLUMNS = ("team", "name", "members", *agent_figures.FIGURES)


async def held_complaints(
    *, session: AsyncSession, window: Window, where: ComplaintFilter
) -> list[agent_figures.HeldComplaint]:
    scope = [*where.clauses(), Complaint.opened_at >= window.since, Complaint.opened_at <= window.until]
    rows = (
        await session.execute(
            sa.select(Complaint.id, _HOLDER.label("holder"), Complaint.first_contact_resolution).where(*scope)
        )
    ).all()
    clocks: dict[Any, list[analytics.ClockFact]] = {}
    for row in await session.execute(
        sa.select(
            SlaClock.complaint_id,
            SlaClock.target,
            SlaClock.cycle,
            Complaint.opened_at,
            SlaClock.due_at,
            SlaClock.met_at,
            SlaClock.breached_at,
        )
        .join(Complaint, Complaint.id == SlaClock.complaint_id)
        .where(*scope)
    ):
        clocks.setdefault(row[0], []).append(analytics.ClockFact(*row[1:]))
    answers: dict[Any, list[int]] = {}
    for complaint_id, csat in await session.execute(
        sa.select(Survey.complaint_id, Survey.csat)
        .join(Complaint, Complaint.id == Survey.complaint_id)
        .where(*scope)
    ):
        answers.setdefault(complaint_id, []).append(csat)
    return [
        agent_figures.HeldComplaint(
            holder=row.holder,
            first_contact_resolution=row.first_contact_resolution,
            clocks=clocks.get(row.id, []),
            csat=answers.get(row.id, []),
        )
        for row in rows
    ]


async def backlog(*, session: AsyncSession, where: ComplaintFilter) -> dict[str, int]:
    """Open complaints each person holds now."""
    rows = await session.execute(
        sa.select(_HOLDER, sa.func.count())
        .where(*where.clauses(), Complaint.status.in_([status.value for status in OPEN]))
        .group_by(_HOLDER)
    )
    return {row[0]: int(row[1]) for row in rows}


async def per_agent(
    *, session: AsyncSession, window: Window, where: ComplaintFilter
) -> list[dict[str, object]]:
    """One row per person: everyone who held a complaint in the period or holds one now, and the directory."""
    rows = await session.execute(sa.select(StaffPerson.subject, StaffPerson.display_name))
    names: dict[str, str] = {row[0]: row[1] for row in rows}
    report = agent_figures.per_agent(
        await held_complaints(session=session, window=window, where=where),
        await backlog(session=session, where=where),
        people=names,
    )
    return [{"agent": subject, "name": names.get(subject), **row} for subject, row in report.items()]


async def per_team(
    *, session: AsyncSession, window: Window, where: ComplaintFilter
) -> list[dict[str, object]]:
    rows = await session.execute(sa.select(StaffTeam.name, StaffTeam.display_name))
    teams: dict[str, str] = {row[0]: row[1] for row in rows}
    members: dict[str, list[str]] = {team: [] for team in teams}
    for subject, teams_of in await session.execute(sa.select(StaffPerson.subject, StaffPerson.teams)):
        for team in teams_of:
            members.setdefault(team, []).append(subject)
    report = agent_figures.per_team(
        await held_complaints(session=session, window=window, where=where),
        await backlog(session=session, where=where),
        members,
    )
    return [
        {"team": team, "name": teams.get(team), "members": len(members[team]), **row}
        for team, row in report.items()
    ]


def to_csv(rows: Sequence[dict[str, object]], columns: Sequence[str]) -> str:
    """Rows as CSV for a spreadsheet (``shared.spreadsheet``): a header, one line per row, empty cells
    for figures there is nothing to compute from."""
    return csv_text(columns, ([row[column] for column in columns] for row in rows))
