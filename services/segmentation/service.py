"""Keeping each customer's aggregates and tier current, one event at a time."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.segmentation.models import CustomerSegment, TierChange
from services.segmentation.scoring import Figures, TierRule, assign_tier
from shared.events import Envelope, Event
from shared.events.segmentation import Tier, TierChanged
from shared.outbox import stage
from shared.problems import NotFound

SOURCE = "/csm/segmentation"


def figures_of(segment: CustomerSegment) -> Figures:
    return Figures(
        frequency=segment.frequency,
        monetary_minor=segment.monetary_minor,
        last_purchase_at=segment.last_purchase_at,
    )


async def segment_for(
    session: AsyncSession, customer_id: uuid.UUID, *, rules: tuple[TierRule, ...], policy_version: int, now: datetime
) -> CustomerSegment:
    """The customer's segment row, created at the tier of a customer who has bought nothing."""
    segment = await session.get(CustomerSegment, customer_id)
    if segment is None:
        decision = assign_tier(Figures(0, 0, None), rules)
        segment = CustomerSegment(
            customer_id=customer_id,
            frequency=0,
            monetary_minor=0,
            tier=decision.tier.value,
            tier_rule=decision.rule,
            policy_version=policy_version,
            updated_at=now,
        )
        session.add(segment)
    return segment


async def retier(
    session: AsyncSession,
    segment: CustomerSegment,
    *,
    rules: tuple[TierRule, ...],
    policy_version: int,
    cause: Envelope[Event],
    now: datetime,
) -> TierChange | None:
    """Apply the rules to the segment's figures; record and announce a change of tier."""
    decision = assign_tier(figures_of(segment), rules)
    segment.tier_rule = decision.rule
    segment.policy_version = policy_version
    segment.updated_at = now
    previous = Tier(segment.tier)
    if decision.tier == previous:
        return None
    segment.tier = decision.tier.value
    direction = "up" if list(Tier).index(decision.tier) < list(Tier).index(previous) else "down"
    reason = f"moved {direction} after {cause.type}: {decision.rule}"
    change = TierChange(
        customer_id=segment.customer_id,
        previous_tier=previous.value,
        tier=decision.tier.value,
        reason=reason,
        policy_version=policy_version,
        cause_event_id=cause.id,
        cause_event_type=cause.type,
        changed_at=now,
    )
    session.add(change)
    stage(
        session,
        TierChanged(
            customer_id=segment.customer_id,
            previous_tier=previous,
            tier=decision.tier,
            reason=reason,
            policy_version=policy_version,
            cause_event_id=cause.id,
            changed_at=now,
        ),
        source=SOURCE,
        cause=cause.id,
        time=now,
    )
    return change


async def get(*, session: AsyncSession, customer_id: uuid.UUID) -> CustomerSegment:
    segment = await session.get(CustomerSegment, customer_id)
    if segment is None:
        raise NotFound(f"No segment for customer {customer_id}: no event about them has arrived yet.")
    return segment


async def history(
    *, session: AsyncSession, customer_id: uuid.UUID, after: tuple[datetime, uuid.UUID] | None, limit: int
) -> list[TierChange]:
    query = sa.select(TierChange).where(TierChange.customer_id == customer_id)
    if after is not None:
        query = query.where(sa.tuple_(TierChange.changed_at, TierChange.id) > sa.tuple_(*after))
    query = query.order_by(TierChange.changed_at, TierChange.id).limit(limit)
    return list((await session.scalars(query)).all())
