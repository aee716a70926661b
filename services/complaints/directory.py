"""The staff directory: people (by sign-in subject) and teams, and what the workflow asks of it.

The directory is optional: a name it does not know keeps meaning what it meant before (a subject
for owners and assignees, a role for the escalation ladder), so a company may fill it in over time.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.complaints import staffing
from services.complaints.directory_schemas import PersonWrite, TeamRead, TeamWrite
from services.complaints.errors import (
    PersonInactive,
    PersonNotFound,
    TeamNotFound,
    TeamUnavailable,
    UnknownPerson,
    UnknownTeam,
)
from services.complaints.models import Complaint, StaffPerson, StaffTeam
from services.complaints.workflow import OPEN
from shared.pagination import keyset_page

OPEN_STATUSES = [status.value for status in OPEN]


async def put_person(
    *, session: AsyncSession, subject: str, person_in: PersonWrite, now: datetime
) -> tuple[StaffPerson, bool]:
    """Record a person, or replace what is recorded; answers the person and whether they are new."""
    known = set(await session.scalars(sa.select(StaffTeam.name).where(StaffTeam.name.in_(person_in.teams))))
    for team in person_in.teams:
        if team not in known:
            raise UnknownTeam(team)
    fields = person_in.model_dump(mode="json")
    person = await session.scalar(sa.select(StaffPerson).where(StaffPerson.subject == subject))
    created = person is None
    if person is None:
        person = StaffPerson(subject=subject, created_at=now)
        session.add(person)
    for name, value in fields.items():
        setattr(person, name, value)
    person.updated_at = now
    await session.flush()
    return person, created


async def find_person(*, session: AsyncSession, subject: str) -> StaffPerson | None:
    return await session.scalar(sa.select(StaffPerson).where(StaffPerson.subject == subject))


async def get_person(*, session: AsyncSession, subject: str) -> StaffPerson:
    person = await find_person(session=session, subject=subject)
    if person is None:
        raise PersonNotFound(subject)
    return person


async def list_people(
    *,
    session: AsyncSession,
    team: str | None,
    active: bool | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[StaffPerson], str | None]:
    query = sa.select(StaffPerson)
    if active is not None:
        query = query.where(StaffPerson.active.is_(active))
    if team is not None:
        # Teams are a short JSON list; a person's membership is checked on the few rows of one team's name.
        query = query.where(StaffPerson.subject.in_(await _members(session=session, team=team)))
    return await keyset_page(query, session=session, order=[StaffPerson.subject], limit=limit, cursor=cursor)


async def _members(*, session: AsyncSession, team: str) -> list[str]:
    rows = await session.execute(sa.select(StaffPerson.subject, StaffPerson.teams))
    return sorted(row.subject for row in rows if team in row.teams)


async def put_team(
    *, session: AsyncSession, name: str, team_in: TeamWrite, now: datetime
) -> tuple[StaffTeam, bool]:
    if team_in.lead is not None and await find_person(session=session, subject=team_in.lead) is None:
        raise UnknownPerson(team_in.lead, field="lead")
    team = await session.scalar(sa.select(StaffTeam).where(StaffTeam.name == name))
    created = team is None
    if team is None:
        team = StaffTeam(name=name, created_at=now)
        session.add(team)
    team.display_name, team.lead, team.updated_at = team_in.display_name, team_in.lead, now
    await session.flush()
    return team, created


async def find_team(*, session: AsyncSession, name: str) -> StaffTeam | None:
    return await session.scalar(sa.select(StaffTeam).where(StaffTeam.name == name))


async def team_read(team: StaffTeam, *, session: AsyncSession) -> TeamRead:
    read = TeamRead.model_validate(team)
    read.members = await _members(session=session, team=team.name)
    return read


async def get_team(*, session: AsyncSession, name: str) -> TeamRead:
    team = await find_team(session=session, name=name)
    if team is None:
        raise TeamNotFound(name)
    return await team_read(team, session=session)


async def list_teams(
    *, session: AsyncSession, limit: int, cursor: str | None
) -> tuple[list[StaffTeam], str | None]:
    return await keyset_page(
        sa.select(StaffTeam), session=session, order=[StaffTeam.name], limit=limit, cursor=cursor
    )


async def loads(*, session: AsyncSession, subjects: Iterable[str]) -> dict[str, int]:
    """Open complaints each person works on: those assigned to them, and those they own unassigned."""
    wanted = list(subjects)
    worker = sa.func.coalesce(Complaint.assignee, Complaint.first_owner)
    rows = await session.execute(
        sa.select(worker, sa.func.count())
        .where(Complaint.status.in_(OPEN_STATUSES), worker.in_(wanted))
        .group_by(worker)
    )
    counted = {row[0]: int(row[1]) for row in rows}
    return {subject: counted.get(subject, 0) for subject in wanted}


async def pick_in_team(
    *,
    session: AsyncSession,
    team: str,
    now: datetime,
    skill: str | None = None,
    language: str | None = None,
) -> str | None:
    """The least-loaded active member of ``team`` on duty now with room for one more, or None."""
    people = [
        person
        for person in await session.scalars(sa.select(StaffPerson).where(StaffPerson.active.is_(True)))
        if team in person.teams
    ]
    load = await loads(session=session, subjects=[person.subject for person in people])
    return staffing.least_loaded(
        (
            staffing.Candidate(
                subject=person.subject,
                load=load[person.subject],
                capacity=person.capacity,
                on_duty=staffing.on_duty(person.working_hours, person.time_zone, now),
                skills=frozenset(person.skills),
                languages=frozenset(person.languages),
            )
            for person in people
        ),
        skill=skill,
        language=language,
    )


async def worker_for(*, session: AsyncSession, name: str, now: datetime) -> str:
    """Who takes work given to ``name``: a team's least-loaded member on duty, or the person named.

    A team with nobody available is a TeamUnavailable (409); an inactive person a PersonInactive;
    a name the directory does not know is taken as a subject, as before the directory existed.
    """
    if await find_team(session=session, name=name) is not None:
        picked = await pick_in_team(session=session, team=name, now=now)
        if picked is None:
            raise TeamUnavailable(name)
        return picked
    person = await find_person(session=session, subject=name)
    if person is not None and not person.active:
        raise PersonInactive(name)
    return name


async def who_must_act(*, session: AsyncSession, name: str) -> str:
    """The escalation ladder's ``must_act``: a team in the directory is answered for by its active lead."""
    team = await find_team(session=session, name=name)
    if team is None or team.lead is None:
        return name
    lead = await find_person(session=session, subject=team.lead)
    return lead.subject if lead is not None and lead.active else name


async def first_owner_in_team(*, session: AsyncSession, team: str, now: datetime) -> str:
    """Who owns a complaint received by ``team`` (known to be one): its least-loaded member on duty,
    else the team itself."""
    return await pick_in_team(session=session, team=team, now=now) or team


async def in_any_team(*, session: AsyncSession, subject: str, teams: Iterable[str]) -> bool:
    """Whether ``subject`` is an active member of one of ``teams`` (names that are no team never match)."""
    person = await find_person(session=session, subject=subject)
    return person is not None and person.active and not set(person.teams).isdisjoint(teams)
