"""HTTP routes of the segmentation service: segments, the policy, the batch, analytics."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, Path, Query, Response

from services.segmentation import analytics, batch, charts, policy_store, service
from services.segmentation.assessment import model_time
from services.segmentation.bgnbd import expected_purchases, probability_alive
from services.segmentation.consumers import segmenter_of
from services.segmentation.deps import (
    AgentOrService,
    ClockDep,
    Manager,
    ReadSessionDep,
    RuntimeDep,
    SessionDep,
    Supervisor,
)
from services.segmentation.errors import AnalysisDateInFuture, CutPointsNotFound
from services.segmentation.models import CutPointsVersion, PolicyVersion, SegmentationState
from services.segmentation.policy import Policy
from services.segmentation.schemas import (
    CoverageRead,
    CutPointsRead,
    DistributionRead,
    KeyAccountRead,
    KeyAccountUpdate,
    MigrationRead,
    OutcomeRead,
    ParetoRead,
    PolicyDraft,
    PolicyRead,
    RetentionRead,
    Scores,
    SegmentFigures,
    SegmentRead,
    TierChangeRead,
)
from services.segmentation.settings import SegmentationSettings
from shared.clock import CalendarDate, UtcDatetime
from shared.events.segmentation import MoveCause
from shared.money import from_minor
from shared.pagination import CursorParam, Limit, Page
from shared.problems import Unprocessable

router = APIRouter(prefix="/segments", tags=["segments"])
# A version number as the database stores it (a 32-bit integer): larger ones are a 422, not a 500.
VersionNumber = Annotated[int, Path(ge=1, le=2**31 - 1)]

policy_router = APIRouter(prefix="/policy", tags=["policy"])
cut_points_router = APIRouter(prefix="/cut-points", tags=["policy"])
analytics_router = APIRouter(prefix="/analytics", tags=["analytics"])

ImageFormat = Annotated[Literal["png", "svg"], Query(description="png or svg")]
AsOf = Annotated[
    UtcDatetime | None,
    Query(
        description="The analysis date: figure everything as of this moment (ISO 8601 with its offset). "
        "If not given, the pinned analysis date, else now. Not in the future."
    ),
]


def _analysis_date(as_of: datetime | None, clock: ClockDep, runtime: RuntimeDep) -> datetime | None:
    """The moment asked for, refused if it lies in the future beyond the clock skew."""
    if as_of is None:
        return None
    now = clock.now()
    settings = runtime.settings
    assert isinstance(settings, SegmentationSettings)
    skew = settings.clock_skew_seconds
    if as_of > now + timedelta(seconds=skew):
        raise AnalysisDateInFuture(as_of, now, skew)
    return as_of


def _coverage_read(coverage: analytics.Coverage) -> CoverageRead:
    return CoverageRead(
        as_of=coverage.as_of,
        pinned=coverage.pinned,
        window_start=coverage.window_start,
        buyers=coverage.buyers,
        dormant=coverage.dormant,
        no_purchases_in_window=coverage.no_purchases_in_window,
        message=coverage.message,
    )


async def _stored_coverage(clock: ClockDep, *, session: ReadSessionDep) -> analytics.Coverage:
    """What the stored assessments cover: the pinned date (else now) and the window in force."""
    state = await session.get(SegmentationState, service.STATE_ID)
    assert state is not None
    return analytics.Coverage(
        as_of=state.as_of or clock.now(),
        pinned=state.as_of is not None,
        window_start=state.window_start,
        buyers=len(await analytics.spend(session=session)),
        dormant=await analytics.dormant(session=session),
    )


def _cut_points_read(row: CutPointsVersion | None) -> CutPointsRead | None:
    if row is None:
        return None

    def money(value: int | None) -> object:
        return None if value is None else from_minor(value)

    return CutPointsRead(
        version=row.version,
        method=row.method,
        trigger=row.trigger,
        population=row.population,
        recency_days=row.recency_days,
        frequency=row.frequency,
        monetary=[money(v) for v in row.monetary_minor],
        abc_a_min=money(row.abc_a_min_minor),
        abc_b_min=money(row.abc_b_min_minor),
        top_share_of_revenue=row.top_share_of_revenue,
        bgnbd=row.bgnbd,
        window_start=row.window_start,
        as_of=row.as_of,
        dormant=row.dormant,
        revenue_shares=[
            {"share": share, "least_spend": money(None if least is None else int(least))}
            for share, least in row.revenue_shares or ()
        ],
        computed_at=row.computed_at,
    )


@router.get(
    "/{customer_id}", summary="Where a customer stands and why: tier, segment, ABC, stage, risk, scores"
)
async def get_segment(
    customer_id: uuid.UUID,
    clock: ClockDep,
    runtime: RuntimeDep,
    _user: AgentOrService,
    *,
    session: ReadSessionDep,
) -> SegmentRead:
    segment = await service.get(session=session, customer_id=customer_id)
    ctx = await segmenter_of(runtime).context(session=session)
    now = ctx.moment(clock.now())
    recency = (
        int((now - segment.last_purchase_at).total_seconds() // 86_400) if segment.last_purchase_at else None
    )
    p_alive = expected = None
    times = model_time(service.facts_of(segment), now, ctx.policy.bgnbd.time_unit_days)
    if ctx.cut_points.bgnbd is not None and times is not None:
        p_alive = probability_alive(ctx.cut_points.bgnbd, *times)
        expected = expected_purchases(
            ctx.cut_points.bgnbd, *times, ctx.policy.bgnbd.horizon_days / ctx.policy.bgnbd.time_unit_days
        )
    scores = None
    if segment.recency_score is not None and segment.frequency_score is not None and segment.monetary_score:
        scores = Scores(
            recency=segment.recency_score,
            frequency=segment.frequency_score,
            monetary=segment.monetary_score,
            total=segment.recency_score + segment.frequency_score + segment.monetary_score,
        )
    designation = None
    if segment.key_account_by is not None:
        designation = KeyAccountRead(
            designated_by=segment.key_account_by, reason=segment.key_account_reason, at=segment.key_account_at
        )
    return SegmentRead(
        customer_id=segment.customer_id,
        tier=segment.tier,
        figures=SegmentFigures(
            recency_days=recency,
            frequency=segment.frequency,
            monetary=from_minor(segment.monetary_minor),
            currency=runtime.settings.common.currency,
            first_purchase_at=segment.first_purchase_at,
            last_purchase_at=segment.last_purchase_at,
        ),
        rule=segment.tier_rule,
        key_account=segment.key_account,
        key_account_designation=designation,
        segment=segment.rfm_segment,
        value_group=segment.value_group,
        abc_class=segment.abc_class,
        stage=segment.stage,
        risk=segment.risk,
        risk_reason=segment.risk_reason,
        probability_alive=p_alive,
        expected_purchases=expected,
        expected_purchases_days=ctx.policy.bgnbd.horizon_days,
        lifetime_frequency=segment.lifetime_frequency,
        signal_points=segment.signal_points,
        scores=scores,
        policy_version=segment.policy_version,
        cut_points_version=segment.cut_points_version,
        cut_points=_cut_points_read(
            await policy_store.cut_points_row(segment.cut_points_version, session=session)
        ),
        updated_at=segment.updated_at,
    )


@router.get("/{customer_id}/history", summary="Every change of a customer, oldest first, with its cause")
async def get_history(
    customer_id: uuid.UUID,
    _user: AgentOrService,
    cursor: CursorParam = None,
    limit: Limit = 50,
    *,
    session: ReadSessionDep,
) -> Page[TierChangeRead]:
    changes, next_cursor = await service.history(
        session=session, customer_id=customer_id, limit=limit, cursor=cursor
    )
    return Page[TierChangeRead](
        items=[TierChangeRead.model_validate(c) for c in changes], next_cursor=next_cursor
    )


@router.put("/{customer_id}/key-account", summary="Designate a key account (or stop), saying why")
async def put_key_account(
    customer_id: uuid.UUID,
    body: KeyAccountUpdate,
    clock: ClockDep,
    runtime: RuntimeDep,
    user: Manager,
    *,
    session: SessionDep,
) -> SegmentRead:
    ctx = await segmenter_of(runtime).context(session=session)
    await service.set_key_account(
        session=session,
        ctx=ctx,
        customer_id=customer_id,
        key_account=body.key_account,
        reason=body.reason,
        actor=user.subject,
        now=clock.now(),
    )
    await session.flush()
    return await get_segment(customer_id, clock, runtime, user, session=session)


def _policy_read(row: PolicyVersion, in_force: int) -> PolicyRead:
    return PolicyRead(
        version=row.version,
        in_force=row.version == in_force,
        policy=Policy.model_validate(row.document),
        note=row.note,
        created_by=row.created_by,
        created_at=row.created_at,
        applied_by=row.applied_by,
        applied_at=row.applied_at,
    )


async def _in_force(*, session: ReadSessionDep) -> int:
    state = await session.get(SegmentationState, service.STATE_ID)
    assert state is not None
    return state.policy_version


@policy_router.get("", summary="The policy in force")
async def get_policy(_user: AgentOrService, *, session: ReadSessionDep) -> PolicyRead:
    version = await _in_force(session=session)
    return _policy_read(await policy_store.policy_row(version, session=session), version)


@policy_router.put("", status_code=201, summary="Store a new version of the policy (in force once applied)")
async def put_policy(body: PolicyDraft, clock: ClockDep, user: Manager, *, session: SessionDep) -> PolicyRead:
    row = await policy_store.create_policy(
        session=session, policy=body.policy, note=body.note, actor=user.subject, now=clock.now()
    )
    return _policy_read(row, await _in_force(session=session))


@policy_router.get("/versions", summary="Stored versions of the policy, newest first")
async def list_policies(
    _user: AgentOrService, cursor: CursorParam = None, limit: Limit = 20, *, session: ReadSessionDep
) -> Page[PolicyRead]:
    rows, next_cursor = await policy_store.list_policies(session=session, limit=limit, cursor=cursor)
    in_force = await _in_force(session=session)
    return Page[PolicyRead](items=[_policy_read(r, in_force) for r in rows], next_cursor=next_cursor)


@policy_router.get("/versions/{version}", summary="One stored version of the policy")
async def get_policy_version(
    version: VersionNumber, _user: AgentOrService, *, session: ReadSessionDep
) -> PolicyRead:
    return _policy_read(
        await policy_store.policy_row(version, session=session), await _in_force(session=session)
    )


@policy_router.post(
    "/what-if", summary="What a candidate policy would do to the current population; changes nothing"
)
async def what_if(
    candidate: Policy,
    clock: ClockDep,
    runtime: RuntimeDep,
    _user: Manager,
    as_of: AsOf = None,
    *,
    session: ReadSessionDep,
) -> OutcomeRead:
    moment = _analysis_date(as_of, clock, runtime)
    outcome = await batch.what_if(session=session, candidate=candidate, now=clock.now(), as_of=moment)
    return OutcomeRead(
        customers=outcome.customers,
        buyers=outcome.population,
        changed=outcome.changed,
        matrix=outcome.matrix,
        policy_version=outcome.policy_version,
        coverage=_outcome_coverage(outcome),
    )


def _outcome_coverage(outcome: batch.Outcome) -> CoverageRead:
    assert outcome.as_of is not None
    return _coverage_read(
        analytics.Coverage(
            as_of=outcome.as_of,
            pinned=outcome.pinned,
            window_start=outcome.window_start,
            buyers=outcome.population,
            dormant=outcome.dormant,
        )
    )


def _outcome_read(outcome: batch.Outcome) -> OutcomeRead:
    return OutcomeRead(
        customers=outcome.customers,
        buyers=outcome.population,
        changed=outcome.changed,
        matrix=outcome.matrix,
        policy_version=outcome.policy_version,
        cut_points_version=outcome.cut_points_version,
        rewritten=outcome.rewritten,
        announced=outcome.announced,
        seconds=round(outcome.seconds, 3),
        coverage=_outcome_coverage(outcome),
    )


@policy_router.post(
    "/versions/{version}/apply", summary="Put a version in force: re-assess everyone, announce movers"
)
async def apply_policy(
    version: VersionNumber, clock: ClockDep, user: Manager, *, session: SessionDep
) -> OutcomeRead:
    row = await policy_store.policy_row(version, session=session)
    now = clock.now()
    row.applied_by, row.applied_at = user.subject[:200], now
    outcome = await batch.recompute(
        session=session,
        now=now,
        trigger=f"policy v{version} applied",
        policy_version=version,
        cause=MoveCause.policy,
    )
    return _outcome_read(outcome)


@cut_points_router.get("", summary="The cut points in force")
async def get_cut_points(_user: AgentOrService, *, session: ReadSessionDep) -> CutPointsRead:
    state = await session.get(SegmentationState, service.STATE_ID)
    assert state is not None
    found = _cut_points_read(await policy_store.cut_points_row(state.cut_points_version, session=session))
    if found is None:
        raise CutPointsNotFound()
    return found


@cut_points_router.post(
    "/recompute",
    summary="Run the batch now: cut points, BG/NBD fit, everyone re-assessed (as_of pins an analysis date)",
)
async def recompute(
    clock: ClockDep, runtime: RuntimeDep, _user: Manager, as_of: AsOf = None, *, session: SessionDep
) -> OutcomeRead:
    moment = _analysis_date(as_of, clock, runtime)
    trigger = "on demand" if moment is None else f"on demand as of {moment:%Y-%m-%d}"
    return _outcome_read(
        await batch.recompute(session=session, now=clock.now(), trigger=trigger, as_of=moment)
    )


@cut_points_router.delete(
    "/analysis-date", summary="Clear the pinned analysis date: the batch runs as of now again, at once"
)
async def clear_analysis_date(clock: ClockDep, _user: Manager, *, session: SessionDep) -> OutcomeRead:
    return _outcome_read(
        await batch.recompute(session=session, now=clock.now(), trigger="analysis date cleared", live=True)
    )


@analytics_router.get(
    "/distribution", summary="Customers per tier, segment, value group, ABC class, stage and risk"
)
async def get_distribution(
    clock: ClockDep, runtime: RuntimeDep, _user: Supervisor, as_of: AsOf = None, *, session: ReadSessionDep
) -> DistributionRead:
    moment = _analysis_date(as_of, clock, runtime)
    if moment is None:
        counts = await analytics.distribution(session=session)
        coverage = await _stored_coverage(clock, session=session)
    else:
        ctx = await segmenter_of(runtime).context(session=session)
        found = await batch.picture(session=session, policy=ctx.policy, now=clock.now(), as_of=moment)
        counts = analytics.distribution_of(found.columns, found.loaded.population.key_account)
        coverage = analytics.Coverage(
            as_of=found.as_of,
            pinned=False,
            window_start=found.window_start,
            buyers=found.extra["population"],
            dormant=found.extra["dormant"],
        )
    return DistributionRead.model_validate(counts | {"coverage": _coverage_read(coverage)})


async def _pareto(
    clock: ClockDep, runtime: RuntimeDep, points: int, as_of: datetime | None, *, session: ReadSessionDep
) -> tuple[analytics.Pareto, analytics.Coverage]:
    ctx = await segmenter_of(runtime).context(session=session)
    moment = _analysis_date(as_of, clock, runtime)
    if moment is None:
        spend = await analytics.spend(session=session)
        coverage = await _stored_coverage(clock, session=session)
    else:
        start = moment - timedelta(days=ctx.policy.window_days)
        rows = await batch.ledger_figures(session=session, window_start=start, until=moment)
        spend = np.array([int(row[2] or 0) for row in rows if row[1]], dtype=np.int64)
        dormant = sum(1 for row in rows if not row[1] and row[3])
        coverage = analytics.Coverage(moment, False, start, len(spend), dormant)
    found = analytics.pareto(spend, top_share=ctx.policy.pareto_top_share, points=points)
    return found, coverage


@analytics_router.get("/pareto", summary="The Pareto curve: share of revenue by share of customers")
async def get_pareto(
    runtime: RuntimeDep,
    _user: Supervisor,
    clock: ClockDep,
    points: Annotated[int, Query(ge=2, le=1000)] = 100,
    as_of: AsOf = None,
    *,
    session: ReadSessionDep,
) -> ParetoRead:
    found, coverage = await _pareto(clock, runtime, points, as_of, session=session)
    return ParetoRead(
        buyers=found.buyers,
        revenue=from_minor(found.revenue_minor),
        top_share=found.top_share,
        top_share_of_revenue=found.top_share_of_revenue,
        curve=[{"customers_share": c, "revenue_share": r} for c, r in found.curve],
        coverage=_coverage_read(coverage),
    )


@analytics_router.get("/pareto/chart", summary="The Pareto curve as a picture", response_class=Response)
async def get_pareto_chart(
    runtime: RuntimeDep,
    clock: ClockDep,
    _user: Supervisor,
    image_format: ImageFormat = "png",
    as_of: AsOf = None,
    *,
    session: ReadSessionDep,
) -> Response:
    found, _coverage = await _pareto(clock, runtime, 100, as_of, session=session)
    image = charts.pareto_chart(
        found.curve,
        top_share=found.top_share,
        top_revenue=found.top_share_of_revenue,
        image_format=image_format,
    )
    return Response(image, media_type=charts.MEDIA_TYPES[image_format])


def _check_range(start: datetime, end: datetime) -> None:
    if end < start:
        raise Unprocessable("end must not be before start.", field="end", location="query")


@analytics_router.get("/migration", summary="How customers moved between tiers from one moment to another")
async def get_migration(
    start: Annotated[UtcDatetime, Query()],
    end: Annotated[UtcDatetime, Query()],
    _user: Supervisor,
    *,
    session: ReadSessionDep,
) -> MigrationRead:
    _check_range(start, end)
    return MigrationRead(
        start=start, end=end, matrix=await analytics.migration(session=session, start=start, end=end)
    )


@analytics_router.get(
    "/migration/chart", summary="The tier migration matrix as a picture", response_class=Response
)
async def get_migration_chart(
    start: Annotated[UtcDatetime, Query()],
    end: Annotated[UtcDatetime, Query()],
    _user: Supervisor,
    image_format: ImageFormat = "png",
    *,
    session: ReadSessionDep,
) -> Response:
    _check_range(start, end)
    matrix = await analytics.migration(session=session, start=start, end=end)
    title = f"Tier migration {start:%Y-%m-%d} -> {end:%Y-%m-%d}"
    return Response(
        charts.migration_chart(matrix, title=title, image_format=image_format),
        media_type=charts.MEDIA_TYPES[image_format],
    )


PERIOD_MONTHS = {"month": 1, "quarter": 3, "year": 12}


@analytics_router.get("/retention", summary="Retention and churn per period and tier")
async def get_retention(
    start: CalendarDate,
    end: CalendarDate,
    _user: Supervisor,
    period: Literal["month", "quarter", "year"] = "month",
    *,
    session: ReadSessionDep,
) -> RetentionRead:
    if end < start:
        raise Unprocessable("end must not be before start.", field="end", location="query")
    months = PERIOD_MONTHS[period]
    if len(analytics.period_starts(start, end, months)) > 60:
        raise Unprocessable("At most 60 periods at a time.", field="start", location="query")
    rows = await analytics.retention(session=session, start=start, end=end, months=months)
    return RetentionRead.model_validate({"period": period, "rows": rows})
