"""A batch of purchases (and registrations) applied set-based: one read, a handful of bulk writes.

The stream of purchases is what segmentation sees most of. The per-event handlers go through
the ORM, whose bookkeeping costs about a millisecond per event; here the batch's customers are
read in one query into plain rows, each event is counted and assessed in order with the same
functions the handlers use (``service.count_purchase``, ``service.reassess``), and the results
are written with one executemany per table. A batch holding anything else (a refund, a
complaint, an erasure, ...) goes to the per-event handlers instead, so their rules have one home.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.segmentation import service
from services.segmentation.models import CustomerSegment, Purchase, TierChange
from services.segmentation.service import Segmenter
from shared.clock import Clock
from shared.events import Envelope, Event
from shared.events.customer import CustomerRegistered, PurchaseRecorded
from shared.inbox import ApplyBatch

SEGMENT = CustomerSegment.__table__
COLUMNS = tuple(column.key for column in SEGMENT.columns)
# What a purchase can change in a known customer's row (the key-account fields and created_at stay).
UPDATED = (
    "frequency",
    "monetary_minor",
    "lifetime_frequency",
    "lifetime_monetary_minor",
    "purchase_days",
    "first_purchase_at",
    "last_purchase_at",
    "tier",
    "tier_rule",
    "recency_score",
    "frequency_score",
    "monetary_score",
    "rfm_segment",
    "abc_class",
    "value_group",
    "stage",
    "risk",
    "risk_reason",
    "policy_version",
    "cut_points_version",
    "updated_at",
)
HANDLED = (PurchaseRecorded, CustomerRegistered)


def _row(**values: Any) -> CustomerSegment:
    """A plain row with a segment's attributes: the shared rules read and write it as they do the ORM's."""
    return cast(CustomerSegment, SimpleNamespace(**(dict.fromkeys(COLUMNS) | values)))


def apply_batch(segmenter: Segmenter, clock: Clock) -> ApplyBatch:
    async def apply(envelopes: Sequence[Envelope[Event]], *, session: AsyncSession) -> bool:
        if not all(isinstance(envelope.data, HANDLED) for envelope in envelopes):
            return False
        ctx = await segmenter.context(session=session)
        now = clock.now()
        wanted = {envelope.data.customer_id for envelope in envelopes}
        found = await session.execute(sa.select(SEGMENT).where(SEGMENT.c.customer_id.in_(wanted)))
        known = {row.customer_id: _row(**row._asdict()) for row in found}
        new: dict[uuid.UUID, CustomerSegment] = {}
        changed: set[uuid.UUID] = set()
        purchases: list[dict[str, Any]] = []
        history: list[dict[str, Any]] = []
        blank = service.blank_verdict(ctx, now)
        known_days = await service.purchase_days_of(wanted, session=session)
        for envelope in envelopes:
            event = envelope.data
            segment = known.get(event.customer_id) or new.get(event.customer_id)
            if segment is None:
                segment = new[event.customer_id] = service.new_segment(
                    event.customer_id, ctx, now, make=_row, verdict=blank
                )
            if isinstance(event, PurchaseRecorded):
                purchases.append(service.count_purchase(segment, event, ctx, known_days=known_days))
                await service.reassess(
                    segment, session=session, ctx=ctx, now=now, cause=envelope, history=history
                )
                changed.add(event.customer_id)
        if new:
            await session.execute(sa.insert(SEGMENT), [vars(row) for row in new.values()])
        updated = [known[customer_id] for customer_id in changed if customer_id in known]
        if updated:
            await session.execute(
                sa.update(SEGMENT)
                .where(SEGMENT.c.customer_id == sa.bindparam("key"))
                .values({name: sa.bindparam(name) for name in UPDATED}),
                [
                    {"key": row.customer_id, **{name: getattr(row, name) for name in UPDATED}}
                    for row in updated
                ],
            )
        if purchases:
            await session.execute(sa.insert(Purchase.__table__), purchases)
        if history:
            await session.execute(sa.insert(TierChange.__table__), history)
        return True

    return apply
