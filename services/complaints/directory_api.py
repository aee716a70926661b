"""HTTP routes of the staff directory: people and teams, kept by managers, readable by all staff."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from services.complaints import directory
from services.complaints.deps import Agent, ClockDep, Manager, ReadSessionDep, SessionDep
from services.complaints.directory_schemas import PersonRead, PersonWrite, TeamRead, TeamWrite
from shared import audit
from shared.pagination import CursorParam, Limit, Page

router = APIRouter(tags=["people"])

SubjectPath = Annotated[str, Path(min_length=1, max_length=200)]
TeamPath = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_-]{0,59}$")]


@router.get("/staff", summary="The people who answer complaints, by subject")
async def list_people(
    _user: Agent,
    team: Annotated[str | None, Query(max_length=60)] = None,
    active: bool | None = None,
    limit: Limit = 50,
    cursor: CursorParam = None,
    *,
    session: ReadSessionDep,
) -> Page[PersonRead]:
    people, following = await directory.list_people(
        session=session, team=team, active=active, limit=limit, cursor=cursor
    )
    return Page(items=[PersonRead.model_validate(person) for person in people], next_cursor=following)


@router.get("/staff/me", summary="The caller's own entry in the directory")
async def who_am_i(user: Agent, *, session: ReadSessionDep) -> PersonRead:
    return PersonRead.model_validate(await directory.get_person(session=session, subject=user.subject))


@router.get("/staff/{subject}", summary="One person")
async def get_person(subject: SubjectPath, _user: Agent, *, session: ReadSessionDep) -> PersonRead:
    return PersonRead.model_validate(await directory.get_person(session=session, subject=subject))


@router.put(
    "/staff/{subject}",
    summary="Record a person under their sign-in subject, or replace the record (managers)",
    responses={201: {"model": PersonRead, "description": "A person new to the directory"}},
)
async def put_person(
    subject: SubjectPath,
    person_in: PersonWrite,
    response: Response,
    clock: ClockDep,
    user: Manager,
    *,
    session: SessionDep,
) -> PersonRead:
    found = await directory.find_person(session=session, subject=subject)
    before = PersonRead.model_validate(found) if found is not None else None
    person, created = await directory.put_person(
        session=session, subject=subject, person_in=person_in, now=clock.now()
    )
    after = PersonRead.model_validate(person)
    await audit.record(
        session,
        actor=user,
        action="staff.put",
        subject_type="staff",
        subject_id=subject,
        before=before,
        after=after,
        at=clock.now(),
    )
    if created:
        response.status_code = status.HTTP_201_CREATED
    return PersonRead.model_validate(person)


@router.get("/teams", summary="The teams")
async def list_teams(
    _user: Agent, limit: Limit = 50, cursor: CursorParam = None, *, session: ReadSessionDep
) -> Page[TeamRead]:
    teams, following = await directory.list_teams(session=session, limit=limit, cursor=cursor)
    return Page(
        items=[await directory.team_read(team, session=session) for team in teams], next_cursor=following
    )


@router.get("/teams/{name}", summary="One team, with its members")
async def get_team(name: TeamPath, _user: Agent, *, session: ReadSessionDep) -> TeamRead:
    return await directory.get_team(session=session, name=name)


@router.put(
    "/teams/{name}",
    summary="Create a team or change its name and lead (managers)",
    responses={201: {"model": TeamRead, "description": "A new team"}},
)
async def put_team(
    name: TeamPath,
    team_in: TeamWrite,
    response: Response,
    clock: ClockDep,
    user: Manager,
    *,
    session: SessionDep,
) -> TeamRead:
    found = await directory.find_team(session=session, name=name)
    before = await directory.team_read(found, session=session) if found is not None else None
    team, created = await directory.put_team(session=session, name=name, team_in=team_in, now=clock.now())
    if created:
        response.status_code = status.HTTP_201_CREATED
    after = await directory.team_read(team, session=session)
    await audit.record(
        session,
        actor=user,
        action="team.put",
        subject_type="team",
        subject_id=name,
        before=before,
        after=after,
        at=clock.now(),
    )
    return after
