"""Response models of the segmentation API."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel

from shared.events.segmentation import Tier


class SegmentFigures(BaseModel):
    recency_days: int | None
    frequency: int
    monetary: Decimal
    currency: str
    first_purchase_at: datetime | None
    last_purchase_at: datetime | None


class SegmentRead(BaseModel):
    customer_id: uuid.UUID
    tier: Tier
    figures: SegmentFigures
    rule: str
    policy_version: int
    updated_at: datetime


class TierChangeRead(BaseModel):
    model_config = {"from_attributes": True}

    id: uuid.UUID
    previous_tier: Tier | None
    tier: Tier
    reason: str
    policy_version: int
    cause_event_id: uuid.UUID | None
    cause_event_type: str | None
    changed_at: datetime
