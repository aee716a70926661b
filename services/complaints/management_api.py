"""HTTP routes for management: the policy, the approval queue and the analytics."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from services.complaints import charts, compensation, policy_store, reports
from services.complaints.api import FiltersDep
from services.complaints.deps import (
    Agent,
    ClockDep,
    CurrencyDep,
    Manager,
    ReadSessionDep,
    SessionDep,
    Supervisor,
)
from services.complaints.models import Compensation, PolicyVersion
from services.complaints.policy import ComplaintPolicy
from services.complaints.schemas import CompensationDecision, CompensationRead, PolicyRead
from shared import audit
from shared.clock import UtcDatetime
from shared.pagination import CursorParam, Limit, Page
from shared.problems import Unprocessable

router = APIRouter(tags=["management"])

MAX_WINDOW = timedelta(days=366)


@router.get("/complaint-policy", summary="The complaint policy in force: targets, calendars, ladder, limits")
async def get_policy(currency: CurrencyDep, _user: Agent, *, session: ReadSessionDep) -> PolicyRead:
    version = await policy_store.current_version(session=session)
    row = await session.get(PolicyVersion, version) if version else None
    return PolicyRead(
        version=version,
        created_by=row.created_by if row else None,
        created_at=row.created_at if row else None,
        policy=await policy_store.at_version(version, session=session, currency=currency),
    )


@router.put("/complaint-policy", summary="Put a new version of the policy in force (managers)")
async def put_policy(
    policy: ComplaintPolicy, clock: ClockDep, currency: CurrencyDep, user: Manager, *, session: SessionDep
) -> PolicyRead:
    previous = await policy_store.current_version(session=session)
    before = await policy_store.at_version(previous, session=session, currency=currency)
    row = await policy_store.store(session=session, policy=policy, actor=user.subject, now=clock.now())
    await audit.record(
        session,
        actor=user,
        action="complaint_policy.put",
        subject_type="complaint_policy",
        subject_id=row.version,
        before={"version": previous, "policy": before},
        after={"version": row.version, "policy": policy},
        at=clock.now(),
    )
    return PolicyRead(
        version=row.version, created_by=row.created_by, created_at=row.created_at, policy=policy
    )


@router.get("/compensations", tags=["complaints"], summary="Compensation across complaints, oldest first")
async def list_compensations(
    _user: Agent,
    status: Literal["granted", "pending", "rejected"] | None = None,
    first_owner: Annotated[str | None, Query(max_length=200)] = None,
    limit: Limit = 50,
    cursor: CursorParam = None,
    *,
    session: ReadSessionDep,
) -> Page[CompensationRead]:
    offers, following = await compensation.list_compensations(
        session=session, complaint_id=None, status=status, limit=limit, cursor=cursor, first_owner=first_owner
    )
    return Page(items=[compensation.to_read(offer) for offer in offers], next_cursor=following)


@router.post(
    "/compensations/{compensation_id}/decision",
    tags=["complaints"],
    summary="Approve or reject a pending compensation (needs a limit that covers it)",
)
async def decide_compensation(
    compensation_id: uuid.UUID,
    decision: CompensationDecision,
    clock: ClockDep,
    currency: CurrencyDep,
    user: Agent,
    *,
    session: SessionDep,
) -> CompensationRead:
    # Locked as decide() locks it, so that the state before is the one the decision is taken on.
    pending = await session.get(Compensation, compensation_id, with_for_update=True)
    before = compensation.audited(pending) if pending is not None else None
    decided = await compensation.decide(
        session=session,
        compensation_id=compensation_id,
        approve=decision.approve,
        principal=user,
        now=clock.now(),
        currency=currency,
    )
    await audit.record(
        session,
        actor=user,
        action="compensation.approve" if decision.approve else "compensation.reject",
        subject_type="compensation",
        subject_id=decided.id,
        before=before,
        after=compensation.audited(decided),
        at=clock.now(),
    )
    return compensation.to_read(decided)


def report_window(clock: ClockDep, since: UtcDatetime | None, until: UtcDatetime | None) -> reports.Window:
    end = until or clock.now()
    start = since or end - timedelta(days=30)
    if start >= end:
        raise Unprocessable("since must be before until.", field="since", location="query")
    if end - start > MAX_WINDOW:
        raise Unprocessable("A report covers at most 366 days.", field="since", location="query")
    return reports.Window(since=start, until=end)


@router.get(
    "/complaints-analytics", summary="Volume, trends, SLA attainment, times, FCR, reopens, root causes"
)
async def analytics(
    clock: ClockDep,
    _user: Supervisor,
    filters: FiltersDep,
    since: UtcDatetime | None = None,
    until: UtcDatetime | None = None,
    *,
    session: ReadSessionDep,
) -> dict[str, object]:
    return await reports.figures(
        session=session, window=report_window(clock, since, until), where=filters.where
    )


@router.get(
    "/complaints-analytics/{chart}.svg",
    summary="The analytics as a chart (SVG)",
    response_class=Response,
    responses={200: {"content": {"image/svg+xml": {}}}},
)
async def analytics_chart(
    chart: charts.Chart,
    clock: ClockDep,
    _user: Supervisor,
    filters: FiltersDep,
    since: UtcDatetime | None = None,
    until: UtcDatetime | None = None,
    *,
    session: ReadSessionDep,
) -> Response:
    figures = await reports.figures(
        session=session, window=report_window(clock, since, until), where=filters.where
    )
    return Response(charts.render(chart, figures), media_type="image/svg+xml")
