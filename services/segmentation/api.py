"""HTTP routes of the segmentation service."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter

from services.segmentation import service
from services.segmentation.deps import AgentOrService, ClockDep, ReadSessionDep, RuntimeDep
from services.segmentation.schemas import SegmentFigures, SegmentRead, TierChangeRead
from shared.events.segmentation import Tier
from shared.money import from_minor
from shared.pagination import CursorParam, Limit, Page, decode_cursor, encode_cursor

router = APIRouter(prefix="/segments", tags=["segments"])


@router.get("/{customer_id}", summary="A customer's tier and the figures it came from")
async def get_segment(
    customer_id: uuid.UUID, session: ReadSessionDep, clock: ClockDep, runtime: RuntimeDep, _user: AgentOrService
) -> SegmentRead:
    segment = await service.get(session=session, customer_id=customer_id)
    recency = (clock.now() - segment.last_purchase_at).days if segment.last_purchase_at else None
    return SegmentRead(
        customer_id=segment.customer_id,
        tier=Tier(segment.tier),
        figures=SegmentFigures(
            recency_days=recency,
            frequency=segment.frequency,
            monetary=from_minor(segment.monetary_minor),
            currency=runtime.settings.common.currency,
            first_purchase_at=segment.first_purchase_at,
            last_purchase_at=segment.last_purchase_at,
        ),
        rule=segment.tier_rule,
        policy_version=segment.policy_version,
        updated_at=segment.updated_at,
    )


@router.get("/{customer_id}/history", summary="Every change of a customer's tier, oldest first, with its cause")
async def get_history(
    customer_id: uuid.UUID,
    session: ReadSessionDep,
    _user: AgentOrService,
    cursor: CursorParam = None,
    limit: Limit = 50,
) -> Page[TierChangeRead]:
    after = None
    if cursor:
        changed_at, change_id = decode_cursor(cursor, 2)
        after = (datetime.fromisoformat(str(changed_at)), uuid.UUID(str(change_id)))
    changes = await service.history(session=session, customer_id=customer_id, after=after, limit=limit + 1)
    page = changes[:limit]
    next_cursor = encode_cursor(page[-1].changed_at.isoformat(), page[-1].id) if len(changes) > limit else None
    return Page[TierChangeRead](items=[TierChangeRead.model_validate(c) for c in page], next_cursor=next_cursor)
