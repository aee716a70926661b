"""The versioned documents of segmentation: the policy (in force once applied) and the cut points."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.segmentation import rfm
from services.segmentation.assessment import NO_CUT_POINTS, CutPoints
from services.segmentation.btyd import parameters_of
from services.segmentation.errors import CutPointsNotFound, PolicyVersionNotFound
from services.segmentation.models import CutPointsVersion, PolicyVersion
from services.segmentation.policy import Policy
from shared.pagination import keyset_page
from shared.versioning import add_next_version


async def load_policy(version: int, *, session: AsyncSession) -> Policy:
    row = await session.get(PolicyVersion, version)
    if row is None:
        raise PolicyVersionNotFound(version)
    return Policy.model_validate(row.document)


async def policy_row(version: int, *, session: AsyncSession) -> PolicyVersion:
    row = await session.get(PolicyVersion, version)
    if row is None:
        raise PolicyVersionNotFound(version)
    return row


async def create_policy(
    *, session: AsyncSession, policy: Policy, note: str | None, actor: str, now: datetime
) -> PolicyVersion:
    """Store ``policy`` as the next version; it is in force only once applied."""
    return await add_next_version(
        lambda version: PolicyVersion(
            version=version,
            document=policy.model_dump(mode="json"),
            note=note,
            created_by=actor[:200],
            created_at=now,
        ),
        session=session,
        version=PolicyVersion.version,
    )


async def list_policies(
    *, session: AsyncSession, limit: int, cursor: str | None
) -> tuple[list[PolicyVersion], str | None]:
    """Newest first."""
    return await keyset_page(
        sa.select(PolicyVersion),
        session=session,
        order=[PolicyVersion.version],
        descending=True,
        limit=limit,
        cursor=cursor,
    )


def cut_points_of(row: CutPointsVersion) -> CutPoints:
    thresholds = None
    if row.population > 0:
        thresholds = rfm.RfmThresholds(
            recency_days=tuple(row.recency_days),  # type: ignore[arg-type]
            frequency=tuple(row.frequency),  # type: ignore[arg-type]
            monetary_minor=tuple(row.monetary_minor),  # type: ignore[arg-type]
        )
    return CutPoints(
        version=row.version,
        rfm=thresholds,
        abc=rfm.AbcThresholds(row.abc_a_min_minor, row.abc_b_min_minor),
        bgnbd=parameters_of(row.bgnbd),
        revenue_shares=tuple(
            (float(share or 0), None if least is None else int(least))
            for share, least in row.revenue_shares or ()
        ),
    )


async def load_cut_points(version: int, *, session: AsyncSession) -> CutPoints:
    if version == 0:
        return NO_CUT_POINTS
    row = await session.get(CutPointsVersion, version)
    if row is None:
        raise CutPointsNotFound(version)
    return cut_points_of(row)


async def cut_points_row(version: int, *, session: AsyncSession) -> CutPointsVersion | None:
    return await session.get(CutPointsVersion, version) if version else None
