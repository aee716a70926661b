"""Figures for management: distributions, the Pareto curve, tier migration, retention by period and tier."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime

import numpy as np
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.segmentation import rfm
from services.segmentation.models import CustomerSegment, Purchase, TierChange
from shared.events.segmentation import TIER_ORDER, Tier

NOT_YET = "none"


async def distribution(*, session: AsyncSession) -> dict[str, object]:
    counts: dict[str, object] = {}
    for name in ("tier", "rfm_segment", "value_group", "abc_class", "stage", "risk"):
        column = getattr(CustomerSegment, name)
        rows = (await session.execute(sa.select(column, sa.func.count()).group_by(column))).all()
        counts["segment" if name == "rfm_segment" else name] = {
            str(value) if value is not None else NOT_YET: int(n) for value, n in rows
        }
    counts["customers"] = int(
        await session.scalar(sa.select(sa.func.count()).select_from(CustomerSegment)) or 0
    )
    counts["key_accounts"] = int(
        await session.scalar(
            sa.select(sa.func.count())
            .select_from(CustomerSegment)
            .where(CustomerSegment.key_account.is_(True))
        )
        or 0
    )
    return counts


LABELS = {
    "tier": "tier",
    "segment": "rfm_segment",
    "value_group": "value_group",
    "abc_class": "abc_class",
    "stage": "stage",
    "risk": "risk",
}


def distribution_of(labels: dict[str, np.ndarray], key_account: np.ndarray) -> dict[str, object]:
    """The same counts as ``distribution``, of labels assessed in memory (as of another moment)."""
    counts: dict[str, object] = {}
    for name, column in LABELS.items():
        values, n = np.unique(
            np.array([NOT_YET if v is None else str(v) for v in labels[column]], dtype=object),
            return_counts=True,
        )
        counts[name] = {str(v): int(c) for v, c in zip(values, n, strict=True)}
    counts["customers"] = len(key_account)
    counts["key_accounts"] = int(np.count_nonzero(key_account))
    return counts


async def spend(*, session: AsyncSession) -> np.ndarray:
    """Net spend of the buyers in the window: the population the Pareto and ABC figures rank."""
    rows = await session.scalars(
        sa.select(CustomerSegment.monetary_minor).where(CustomerSegment.frequency > 0)
    )
    return np.fromiter(rows, dtype=np.int64)


async def dormant(*, session: AsyncSession) -> int:
    """Customers who bought, but not in the window: counted apart, ranked in no figure."""
    return int(
        await session.scalar(
            sa.select(sa.func.count())
            .select_from(CustomerSegment)
            .where(CustomerSegment.lifetime_frequency > 0, CustomerSegment.frequency <= 0)
        )
        or 0
    )


@dataclass(frozen=True)
class Coverage:
    """Which population and moment a set of figures covers, and whether there was anything to rank."""

    as_of: datetime
    pinned: bool
    window_start: datetime | None
    buyers: int
    dormant: int

    @property
    def no_purchases_in_window(self) -> bool:
        return self.buyers == 0

    @property
    def message(self) -> str | None:
        if self.buyers:
            return None
        since = f"from {self.window_start:%Y-%m-%d} " if self.window_start else ""
        apart = f" {self.dormant} customers bought only before it." if self.dormant else ""
        return (
            f"No purchases in the window ({since}to {self.as_of:%Y-%m-%d}): there are no RFM, ABC or "
            f"Pareto figures to show, and every buyer is lapsed.{apart} Analyse as of a date within "
            "the history (as_of) or use a longer window."
        )


async def tiers_at(*, session: AsyncSession, moment: datetime) -> dict[uuid.UUID, str]:
    """Each customer's tier at ``moment``: their last change by then, else the tier they started in."""
    latest = (
        sa.select(TierChange.customer_id, sa.func.max(TierChange.changed_at).label("at"))
        .where(TierChange.changed_at <= moment)
        .group_by(TierChange.customer_id)
        .subquery()
    )
    changed = await session.execute(
        sa.select(TierChange.customer_id, TierChange.tier).join(
            latest,
            sa.and_(TierChange.customer_id == latest.c.customer_id, TierChange.changed_at == latest.c.at),
        )
    )
    tiers = {
        customer_id: tier
        for customer_id, tier in (
            await session.execute(
                sa.select(CustomerSegment.customer_id, CustomerSegment.initial_tier).where(
                    CustomerSegment.created_at <= moment
                )
            )
        ).all()
    }
    tiers.update(dict(changed.all()))
    return tiers


async def migration(*, session: AsyncSession, start: datetime, end: datetime) -> dict[str, dict[str, int]]:
    before = await tiers_at(session=session, moment=start)
    after = await tiers_at(session=session, moment=end)
    names = [NOT_YET, *(t.value for t in TIER_ORDER)]
    matrix = {old: {new: 0 for new in names[1:]} for old in names}
    for customer_id, tier in after.items():
        matrix[before.get(customer_id, NOT_YET)][tier] += 1
    return matrix


def period_starts(start: date, end: date, months: int) -> list[date]:
    """First days of the ``months``-long periods from the one holding ``start`` to the one holding ``end``."""
    first = date(start.year, ((start.month - 1) // months) * months + 1, 1)
    starts = []
    current = first
    while current <= end:
        starts.append(current)
        month = current.month - 1 + months
        current = date(current.year + month // 12, month % 12 + 1, 1)
    return starts


def add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    return date(day.year + month // 12, month % 12 + 1, 1)


async def retention(*, session: AsyncSession, start: date, end: date, months: int) -> list[dict[str, object]]:
    """Per period and tier (at the period's start): of the customers who bought in the previous period,
    how many bought again in this one. Churn is the rest."""
    starts = period_starts(start, end, months)
    first_base = add_months(starts[0], -months)
    boundaries = [first_base, *starts, add_months(starts[-1], months)]
    edges = [datetime(d.year, d.month, d.day, tzinfo=UTC) for d in boundaries]
    rows = await session.execute(
        sa.select(Purchase.customer_id, Purchase.purchased_at).where(
            Purchase.fully_refunded.is_(False),
            Purchase.purchased_at >= edges[0],
            Purchase.purchased_at < edges[-1],
        )
    )
    buyers: list[set[uuid.UUID]] = [set() for _ in range(len(edges) - 1)]
    stamps = np.array([e.timestamp() for e in edges])
    for customer_id, purchased_at in rows.all():
        index = int(np.searchsorted(stamps, purchased_at.timestamp(), side="right")) - 1
        buyers[index].add(customer_id)
    result = []
    for i, period_start in enumerate(starts, start=1):
        tiers = await tiers_at(session=session, moment=edges[i])
        base: dict[str, int] = defaultdict(int)
        kept: dict[str, int] = defaultdict(int)
        for customer_id in buyers[i - 1]:
            tier = tiers.get(customer_id, Tier.lead.value)
            base[tier] += 1
            kept[tier] += customer_id in buyers[i]
        for tier in TIER_ORDER:
            n = base[tier.value]
            rate = kept[tier.value] / n if n else None
            result.append(
                {
                    "period_start": period_start,
                    "tier": tier,
                    "buyers_before": n,
                    "retained": kept[tier.value],
                    "retention_rate": rate,
                    "churn_rate": None if rate is None else 1 - rate,
                }
            )
    return result


@dataclass(frozen=True)
class Pareto:
    buyers: int
    revenue_minor: int
    top_share: float
    top_share_of_revenue: float | None
    curve: list[tuple[float, float]]


def pareto(monetary_minor: np.ndarray, *, top_share: float, points: int) -> Pareto:
    return Pareto(
        buyers=len(monetary_minor),
        revenue_minor=int(monetary_minor.sum()) if len(monetary_minor) else 0,
        top_share=top_share,
        top_share_of_revenue=rfm.top_share_of_revenue(monetary_minor, top_share=top_share),
        curve=rfm.pareto_curve(monetary_minor, points=points),
    )
