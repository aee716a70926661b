"""The segmentation service's tables: its own projection of each customer's purchases."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import TYPE_ANNOTATION_MAP, new_id, service_metadata, utcnow


class Base(DeclarativeBase):
    metadata = service_metadata()
    type_annotation_map = TYPE_ANNOTATION_MAP


class CustomerSegment(Base):
    """Per-customer aggregates kept from purchase events, and the tier they earn."""

    __tablename__ = "customer_segment"

    customer_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    frequency: Mapped[int] = mapped_column(Integer, default=0)
    monetary_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    first_purchase_at: Mapped[datetime | None]
    last_purchase_at: Mapped[datetime | None]
    tier: Mapped[str] = mapped_column(String(20))
    tier_rule: Mapped[str] = mapped_column(String(200))
    policy_version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class TierChange(Base):
    """One move of a customer in the pyramid, with the event that caused it."""

    __tablename__ = "tier_change"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    customer_id: Mapped[uuid.UUID] = mapped_column(index=True)
    previous_tier: Mapped[str | None] = mapped_column(String(20))
    tier: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(String(300))
    policy_version: Mapped[int] = mapped_column(Integer)
    cause_event_id: Mapped[uuid.UUID | None]
    cause_event_type: Mapped[str | None] = mapped_column(String(100))
    changed_at: Mapped[datetime]
