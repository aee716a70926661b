"""HTTP routes of segmentation's analytics: distributions, Pareto, migration and retention, as of a date."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, Query, Response

from services.segmentation import analytics, batch, charts, ledger, service
from services.segmentation.consumers import segmenter_of
from services.segmentation.deps import AnalysisDate, ClockDep, ReadSessionDep, RuntimeDep, Supervisor
from services.segmentation.models import SegmentationState
from services.segmentation.schemas import (
    CoverageRead,
    DistributionRead,
    MigrationRead,
    ParetoRead,
    RetentionRead,
)
from shared.clock import CalendarDate, UtcDatetime
from shared.money import from_minor
from shared.problems import Unprocessable

router = APIRouter(prefix="/analytics", tags=["analytics"])

ImageFormat = Annotated[Literal["png", "svg"], Query(description="png or svg")]


def coverage_read(coverage: analytics.Coverage) -> CoverageRead:
    return CoverageRead(
        as_of=coverage.as_of,
        pinned=coverage.pinned,
        window_start=coverage.window_start,
        buyers=coverage.buyers,
        dormant=coverage.dormant,
        no_purchases_in_window=coverage.no_purchases_in_window,
        message=coverage.message,
    )


async def stored_coverage(clock: ClockDep, *, session: ReadSessionDep) -> analytics.Coverage:
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


@router.get("/distribution", summary="Customers per tier, segment, value group, ABC class, stage and risk")
async def get_distribution(
    clock: ClockDep, runtime: RuntimeDep, _user: Supervisor, moment: AnalysisDate, *, session: ReadSessionDep
) -> DistributionRead:
    if moment is None:
        counts = await analytics.distribution(session=session)
        coverage = await stored_coverage(clock, session=session)
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
    return DistributionRead.model_validate(counts | {"coverage": coverage_read(coverage)})


async def _pareto(
    clock: ClockDep, runtime: RuntimeDep, points: int, moment: datetime | None, *, session: ReadSessionDep
) -> tuple[analytics.Pareto, analytics.Coverage]:
    ctx = await segmenter_of(runtime).context(session=session)
    if moment is None:
        spend = await analytics.spend(session=session)
        coverage = await stored_coverage(clock, session=session)
    else:
        start = moment - timedelta(days=ctx.policy.window_days)
        rows = await ledger.figures(session=session, window_start=start, until=moment)
        spend = np.array([int(row.monetary_minor or 0) for row in rows if row.frequency], dtype=np.int64)
        dormant = sum(1 for row in rows if not row.frequency and row.lifetime_frequency)
        coverage = analytics.Coverage(moment, False, start, len(spend), dormant)
    found = analytics.pareto(spend, top_share=ctx.policy.pareto_top_share, points=points)
    return found, coverage


@router.get("/pareto", summary="The Pareto curve: share of revenue by share of customers")
async def get_pareto(
    runtime: RuntimeDep,
    _user: Supervisor,
    clock: ClockDep,
    moment: AnalysisDate,
    points: Annotated[int, Query(ge=2, le=1000)] = 100,
    *,
    session: ReadSessionDep,
) -> ParetoRead:
    found, coverage = await _pareto(clock, runtime, points, moment, session=session)
    return ParetoRead(
        buyers=found.buyers,
        revenue=from_minor(found.revenue_minor),
        top_share=found.top_share,
        top_share_of_revenue=found.top_share_of_revenue,
        curve=[{"customers_share": c, "revenue_share": r} for c, r in found.curve],
        coverage=coverage_read(coverage),
    )


@router.get("/pareto/chart", summary="The Pareto curve as a picture", response_class=Response)
async def get_pareto_chart(
    runtime: RuntimeDep,
    clock: ClockDep,
    _user: Supervisor,
    moment: AnalysisDate,
    image_format: ImageFormat = "png",
    *,
    session: ReadSessionDep,
) -> Response:
    found, _coverage = await _pareto(clock, runtime, 100, moment, session=session)
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


@router.get("/migration", summary="How customers moved between tiers from one moment to another")
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


@router.get("/migration/chart", summary="The tier migration matrix as a picture", response_class=Response)
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


@router.get("/retention", summary="Retention and churn per period and tier")
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
