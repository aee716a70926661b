"""HTTP routes of the segmentation service: segments, the policy and the batch (analytics: analytics_api)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path

from services.segmentation import analytics, batch, policy_store, service
from services.segmentation.analytics_api import coverage_read
from services.segmentation.assessment import model_time
from services.segmentation.btyd import expected_purchases, probability_alive
from services.segmentation.consumers import segmenter_of
from services.segmentation.deps import (
    AgentOrService,
    AnalysisDate,
    ClockDep,
    Manager,
    ReadSessionDep,
    RuntimeDep,
    SessionDep,
)
from services.segmentation.errors import CutPointsNotFound
from services.segmentation.models import CutPointsVersion, PolicyVersion, SegmentationState
from services.segmentation.policy import Policy
from services.segmentation.schemas import (
    CoverageRead,
    CutPointsRead,
    KeyAccountRead,
    KeyAccountUpdate,
    OutcomeRead,
    PolicyDraft,
    PolicyRead,
    Scores,
    SegmentFigures,
    SegmentRead,
    TierChangeRead,
)
from shared import audit
from shared.events.segmentation import MoveCause
from shared.money import from_minor
from shared.pagination import CursorParam, Limit, Page

router = APIRouter(prefix="/segments", tags=["segments"])
# A version number as the database stores it (a 32-bit integer): larger ones are a 422, not a 500.
VersionNumber = Annotated[int, Path(ge=1, le=2**31 - 1)]

policy_router = APIRouter(prefix="/policy", tags=["policy"])
cut_points_router = APIRouter(prefix="/cut-points", tags=["policy"])


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
    segment = await service.get(session=session, customer_id=customer_id)
    before = {"key_account": segment.key_account, "tier": segment.tier}
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
    # The reason stays in the customer's own history (erased with them), not in the log.
    await audit.record(
        session,
        actor=user,
        action="key_account.put",
        subject_type="customer",
        subject_id=customer_id,
        before=before,
        after={"key_account": segment.key_account, "tier": segment.tier},
        at=clock.now(),
    )
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
    await audit.record(
        session,
        actor=user,
        action="segmentation_policy.put",
        subject_type="segmentation_policy",
        subject_id=row.version,
        after={"version": row.version, "policy": body.policy, "note": body.note},
        at=clock.now(),
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
    _user: Manager,
    moment: AnalysisDate,
    *,
    session: ReadSessionDep,
) -> OutcomeRead:
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
    return coverage_read(
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
    previous = await _in_force(session=session)
    row.applied_by, row.applied_at = user.subject[:200], now
    await audit.record(
        session,
        actor=user,
        action="segmentation_policy.apply",
        subject_type="segmentation_policy",
        subject_id=version,
        before={"in_force": previous},
        after={"in_force": version},
        at=now,
    )
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
    clock: ClockDep, _user: Manager, moment: AnalysisDate, *, session: SessionDep
) -> OutcomeRead:
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
