"""The complaints service's tables."""

from __future__ import annotations

import uuid

from sqlalchemy import String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import TYPE_ANNOTATION_MAP, TimestampMixin, new_id, service_metadata


class Base(DeclarativeBase):
    metadata = service_metadata()
    type_annotation_map = TYPE_ANNOTATION_MAP


class Complaint(TimestampMixin, Base):
    __tablename__ = "complaint"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    customer_id: Mapped[uuid.UUID] = mapped_column(index=True)
    channel: Mapped[str] = mapped_column(String(20))
    category: Mapped[str] = mapped_column(String(40))
    severity: Mapped[str] = mapped_column(String(20))
    description: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(30))
    # Whoever received the complaint owns it until it is closed (首问负责).
    first_owner: Mapped[str] = mapped_column(String(200), index=True)


class CustomerTier(Base):
    """Projection of segmentation's verdict on each customer, kept from segment.tier_changed events."""

    __tablename__ = "customer_tier"

    customer_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    tier: Mapped[str] = mapped_column(String(20))
    key_account: Mapped[bool] = mapped_column(default=False)
