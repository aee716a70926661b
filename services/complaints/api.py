"""HTTP routes of the complaints service: intake, the workflow, resolution and satisfaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query, Response, status

from services.complaints import compensation, escalation, listing, resolution, satisfaction, service
from services.complaints.deps import (
    Agent,
    AgentOrService,
    ClockDep,
    CurrencyDep,
    ReadSessionDep,
    SessionDep,
    SettingsDep,
    actor_of,
)
from services.complaints.schemas import (
    AssignmentCreate,
    CompensationCreate,
    CompensationRead,
    ComplaintCreate,
    ComplaintRead,
    ComplaintUpdate,
    EscalationCreate,
    EscalationRead,
    ReopenCreate,
    ResolutionCreate,
    SurveyCreate,
    SurveyRead,
    TransitionCreate,
    TransitionRead,
    VisitCreate,
)
from services.complaints.workflow import Status
from shared import audit
from shared.clock import UtcDatetime
from shared.events.complaints import ComplaintCategory, ComplaintChannel, Severity
from shared.events.segmentation import Tier
from shared.idempotency import IdempotencyKey
from shared.pagination import CursorParam, Limit, Page
from shared.problems import Unprocessable
from shared.roles import Role

router = APIRouter(prefix="/complaints", tags=["complaints"])

ComplaintId = uuid.UUID


@dataclass(frozen=True)
class Filters:
    """Query filters shared by the list and the analytics; every list and report filters by first owner."""

    where: listing.ComplaintFilter


async def filters(
    first_owner: Annotated[str | None, Query(max_length=200)] = None,
    assignee: Annotated[str | None, Query(max_length=200)] = None,
    customer_id: uuid.UUID | None = None,
    status: Status | None = None,
    open: Annotated[
        bool | None, Query(description="Only open (true) or only resolved and closed (false).")
    ] = None,
    tier: Tier | None = None,
    category: ComplaintCategory | None = None,
    channel: ComplaintChannel | None = None,
    severity: Severity | None = None,
) -> Filters:
    """The query's filters. A coroutine: FastAPI runs a class or a plain function it is given as a
    dependency in a worker thread, a hop per request (tests/shared/test_dependencies.py)."""
    return Filters(
        listing.ComplaintFilter(
            first_owner=first_owner,
            assignee=assignee,
            customer_id=customer_id,
            status=status,
            open=open,
            tier=tier,
            category=category,
            channel=channel,
            severity=severity,
        )
    )


FiltersDep = Annotated[Filters, Depends(filters)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Take a complaint",
    responses={
        200: {"model": ComplaintRead, "description": "A repeat of an Idempotency-Key: the complaint it made"}
    },
)
async def open_complaint(
    complaint_in: ComplaintCreate,
    response: Response,
    clock: ClockDep,
    user: AgentOrService,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey = None,
    *,
    session: SessionDep,
) -> ComplaintRead:
    if complaint_in.received_by is not None and user.role is not Role.service:
        raise Unprocessable(
            "Only systems name who received a complaint; staff own what they take.", field="received_by"
        )
    complaint, clocks = await service.open_complaint(
        session=session,
        complaint_in=complaint_in,
        first_owner=complaint_in.received_by or user.subject,
        now=clock.now(),
        currency=settings.common.currency,
        idempotency_key=idempotency_key,
        idempotency_scope=f"{user.subject} POST /complaints",
        idempotency_ttl=timedelta(hours=settings.idempotency_ttl_hours),
    )
    if clocks is None:
        response.status_code = status.HTTP_200_OK
        [read] = await listing.to_read([complaint], session=session, currency=settings.common.currency)
        return read
    # A new complaint's clocks are in hand: no need to read them back.
    policy = await service.policy_of(complaint, session=session, currency=settings.common.currency)
    return listing.read_of(complaint, clocks.values(), currency=policy.currency)


@router.get("", summary="Complaints, newest first")
async def list_complaints(
    currency: CurrencyDep,
    _user: AgentOrService,
    filters: FiltersDep,
    opened_from: UtcDatetime | None = None,
    opened_before: UtcDatetime | None = None,
    limit: Limit = 50,
    cursor: CursorParam = None,
    *,
    session: ReadSessionDep,
) -> Page[ComplaintRead]:
    where = listing.ComplaintFilter(
        **{**filters.where.__dict__, "opened_from": opened_from, "opened_before": opened_before}
    )
    complaints, following = await listing.list_complaints(
        session=session, where=where, limit=limit, cursor=cursor
    )
    return Page(
        items=await listing.to_read(complaints, session=session, currency=currency), next_cursor=following
    )


@router.get("/{complaint_id}", summary="One complaint, with its promises")
async def get_complaint(
    complaint_id: ComplaintId, currency: CurrencyDep, _user: AgentOrService, *, session: ReadSessionDep
) -> ComplaintRead:
    complaint = await service.get(session=session, complaint_id=complaint_id)
    [read] = await listing.to_read([complaint], session=session, currency=currency)
    return read


async def _read(complaint: object, currency: str, *, session: SessionDep) -> ComplaintRead:
    [read] = await listing.to_read([complaint], session=session, currency=currency)  # type: ignore[list-item]
    return read


@router.patch("/{complaint_id}", summary="Change severity, category, visit or desired outcome (re-targets)")
async def update_complaint(
    complaint_id: ComplaintId,
    complaint_in: ComplaintUpdate,
    clock: ClockDep,
    currency: CurrencyDep,
    user: Agent,
    *,
    session: SessionDep,
) -> ComplaintRead:
    await service.check_may_act(session=session, complaint_id=complaint_id, principal=user)
    complaint = await service.update(
        session=session,
        complaint_id=complaint_id,
        complaint_in=complaint_in,
        now=clock.now(),
        currency=currency,
    )
    return await _read(complaint, currency, session=session)


@router.post(
    "/{complaint_id}/transitions",
    summary="Move along the workflow (acknowledge, start, wait on the customer, close)",
    responses={409: {"description": "Not allowed from the current status; the answer lists what is"}},
)
async def move_complaint(
    complaint_id: ComplaintId,
    transition_in: TransitionCreate,
    clock: ClockDep,
    currency: CurrencyDep,
    user: Agent,
    *,
    session: SessionDep,
) -> ComplaintRead:
    await service.check_may_act(session=session, complaint_id=complaint_id, principal=user)
    complaint = await service.transition(
        session=session,
        complaint_id=complaint_id,
        to=Status(transition_in.to),
        actor=actor_of(user),
        reason=transition_in.reason,
        now=clock.now(),
        currency=currency,
    )
    return await _read(complaint, currency, session=session)


@router.get("/{complaint_id}/transitions", summary="Every change of status: who, when and why")
async def list_transitions(
    complaint_id: ComplaintId,
    _user: AgentOrService,
    limit: Limit = 50,
    cursor: CursorParam = None,
    *,
    session: ReadSessionDep,
) -> Page[TransitionRead]:
    steps, following = await listing.transitions_of(
        session=session, complaint_id=complaint_id, limit=limit, cursor=cursor
    )
    return Page(items=[TransitionRead.model_validate(step) for step in steps], next_cursor=following)


@router.post("/{complaint_id}/assignment", summary="Hand the work to someone (the first owner stays)")
async def assign_complaint(
    complaint_id: ComplaintId,
    assignment_in: AssignmentCreate,
    clock: ClockDep,
    currency: CurrencyDep,
    user: Agent,
    *,
    session: SessionDep,
) -> ComplaintRead:
    await service.check_may_act(session=session, complaint_id=complaint_id, principal=user)
    complaint = await service.assign(
        session=session,
        complaint_id=complaint_id,
        assignee=assignment_in.assignee,
        actor=actor_of(user),
        reason=assignment_in.reason,
        now=clock.now(),
    )
    return await _read(complaint, currency, session=session)


@router.post("/{complaint_id}/visit", summary="Record the on-site visit")
async def record_visit(
    complaint_id: ComplaintId,
    clock: ClockDep,
    currency: CurrencyDep,
    user: Agent,
    visit_in: Annotated[VisitCreate | None, Body()] = None,
    *,
    session: SessionDep,
) -> ComplaintRead:
    await service.check_may_act(session=session, complaint_id=complaint_id, principal=user)
    complaint = await service.record_visit(
        session=session,
        complaint_id=complaint_id,
        visited_at=visit_in.visited_at if visit_in else None,
        now=clock.now(),
        currency=currency,
    )
    return await _read(complaint, currency, session=session)


@router.post(
    "/{complaint_id}/escalations",
    status_code=status.HTTP_201_CREATED,
    summary="Escalate one level up the ladder now",
)
async def escalate_complaint(
    complaint_id: ComplaintId,
    escalation_in: EscalationCreate,
    clock: ClockDep,
    currency: CurrencyDep,
    user: Agent,
    *,
    session: SessionDep,
) -> EscalationRead:
    await service.check_may_act(session=session, complaint_id=complaint_id, principal=user)
    climbed = await escalation.escalate_by_hand(
        session=session,
        complaint_id=complaint_id,
        actor=user.subject,
        reason=escalation_in.reason,
        now=clock.now(),
        currency=currency,
    )
    return EscalationRead.model_validate(climbed)


@router.get("/{complaint_id}/escalations", summary="The complaint's way up the ladder")
async def list_escalations(
    complaint_id: ComplaintId,
    _user: AgentOrService,
    limit: Limit = 50,
    cursor: CursorParam = None,
    *,
    session: ReadSessionDep,
) -> Page[EscalationRead]:
    levels, following = await escalation.escalations_of(
        session=session, complaint_id=complaint_id, limit=limit, cursor=cursor
    )
    return Page(items=[EscalationRead.model_validate(level) for level in levels], next_cursor=following)


@router.post("/{complaint_id}/resolution", summary="Resolve: summary, root cause, first-contact resolution")
async def resolve_complaint(
    complaint_id: ComplaintId,
    resolution_in: ResolutionCreate,
    clock: ClockDep,
    currency: CurrencyDep,
    user: Agent,
    *,
    session: SessionDep,
) -> ComplaintRead:
    await service.check_may_act(session=session, complaint_id=complaint_id, principal=user)
    complaint = await resolution.resolve(
        session=session,
        complaint_id=complaint_id,
        resolution_in=resolution_in,
        actor=actor_of(user),
        now=clock.now(),
        currency=currency,
    )
    return await _read(complaint, currency, session=session)


@router.post("/{complaint_id}/reopen", summary="Reopen: a new cycle with the promises owed again")
async def reopen_complaint(
    complaint_id: ComplaintId,
    reopen_in: ReopenCreate,
    clock: ClockDep,
    currency: CurrencyDep,
    user: Agent,
    *,
    session: SessionDep,
) -> ComplaintRead:
    await service.check_may_act(session=session, complaint_id=complaint_id, principal=user)
    complaint = await resolution.reopen_by_id(
        session=session,
        complaint_id=complaint_id,
        reason=reopen_in.reason,
        actor=actor_of(user),
        now=clock.now(),
        currency=currency,
    )
    return await _read(complaint, currency, session=session)


@router.post(
    "/{complaint_id}/compensations",
    status_code=status.HTTP_201_CREATED,
    summary="Offer compensation: granted within your limit, otherwise pending approval by a higher role",
)
async def offer_compensation(
    complaint_id: ComplaintId,
    compensation_in: CompensationCreate,
    clock: ClockDep,
    currency: CurrencyDep,
    user: Agent,
    *,
    session: SessionDep,
) -> CompensationRead:
    await service.check_may_act(session=session, complaint_id=complaint_id, principal=user)
    offered = await compensation.offer(
        session=session,
        complaint_id=complaint_id,
        compensation_in=compensation_in,
        principal=user,
        now=clock.now(),
        currency=currency,
    )
    await audit.record(
        session,
        actor=user,
        action="compensation.offer",
        subject_type="compensation",
        subject_id=offered.id,
        after=compensation.audited(offered),
        at=clock.now(),
    )
    return compensation.to_read(offered)


@router.get("/{complaint_id}/compensations", summary="Compensation offered on the complaint")
async def list_complaint_compensations(
    complaint_id: ComplaintId,
    _user: AgentOrService,
    limit: Limit = 50,
    cursor: CursorParam = None,
    *,
    session: ReadSessionDep,
) -> Page[CompensationRead]:
    await service.get(session=session, complaint_id=complaint_id)
    offers, following = await compensation.list_compensations(
        session=session, complaint_id=complaint_id, status=None, limit=limit, cursor=cursor
    )
    return Page(items=[compensation.to_read(offer) for offer in offers], next_cursor=following)


@router.post(
    "/{complaint_id}/survey",
    status_code=status.HTTP_201_CREATED,
    summary="The customer's satisfaction answer; a poor one reopens the complaint",
)
async def answer_survey(
    complaint_id: ComplaintId,
    survey_in: SurveyCreate,
    clock: ClockDep,
    currency: CurrencyDep,
    _user: AgentOrService,
    *,
    session: SessionDep,
) -> SurveyRead:
    survey = await satisfaction.answer(
        session=session, complaint_id=complaint_id, survey_in=survey_in, now=clock.now(), currency=currency
    )
    return SurveyRead.model_validate(survey)


@router.get("/{complaint_id}/surveys", summary="Survey answers, one per cycle")
async def list_surveys(
    complaint_id: ComplaintId,
    _user: AgentOrService,
    limit: Limit = 50,
    cursor: CursorParam = None,
    *,
    session: ReadSessionDep,
) -> Page[SurveyRead]:
    surveys, following = await satisfaction.surveys_of(
        session=session, complaint_id=complaint_id, limit=limit, cursor=cursor
    )
    return Page(items=[SurveyRead.model_validate(survey) for survey in surveys], next_cursor=following)
