"""The segmentation service's tables: its own projection of each customer, the policy and the cut points."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, BigInteger, Boolean, Float, Integer, String, Table
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared import audit
from shared.db import TYPE_ANNOTATION_MAP, new_id, ordered_id, service_metadata, utcnow


class Base(DeclarativeBase):
    metadata = service_metadata()
    type_annotation_map = TYPE_ANNOTATION_MAP
    # Every model here is mapped to a plain table (SQLAlchemy declares any FromClause).
    __table__: ClassVar[Table]


class CustomerSegment(Base):
    """One customer: the facts kept from events, and where the last assessment put them."""

    __tablename__ = "customer_segment"

    customer_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    # Purchases and net spend within the policy's window (see SegmentationState.window_start).
    frequency: Mapped[int] = mapped_column(Integer, default=0)
    monetary_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    lifetime_frequency: Mapped[int] = mapped_column(Integer, default=0)
    lifetime_monetary_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    # Days (UTC) with a purchase not refunded in full: the transactions of the buying models.
    purchase_days: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    first_purchase_at: Mapped[datetime | None]
    last_purchase_at: Mapped[datetime | None]
    engaged: Mapped[bool] = mapped_column(Boolean, default=False)
    last_nps: Mapped[int | None] = mapped_column(Integer)
    last_csat: Mapped[int | None] = mapped_column(Integer)
    signal_points: Mapped[float] = mapped_column(Float, default=0.0)
    key_account: Mapped[bool] = mapped_column(Boolean, default=False)
    key_account_by: Mapped[str | None] = mapped_column(String(200))
    key_account_reason: Mapped[str | None] = mapped_column(String(500))
    key_account_at: Mapped[datetime | None]
    tier: Mapped[str] = mapped_column(String(20))
    initial_tier: Mapped[str] = mapped_column(String(20))
    tier_rule: Mapped[str] = mapped_column(String(200))
    recency_score: Mapped[int | None] = mapped_column(Integer)
    frequency_score: Mapped[int | None] = mapped_column(Integer)
    monetary_score: Mapped[int | None] = mapped_column(Integer)
    rfm_segment: Mapped[str | None] = mapped_column(String(30))
    abc_class: Mapped[str | None] = mapped_column(String(1))
    value_group: Mapped[str | None] = mapped_column(String(20))
    stage: Mapped[str] = mapped_column(String(30))
    risk: Mapped[str] = mapped_column(String(20))
    risk_reason: Mapped[str] = mapped_column(String(200))
    policy_version: Mapped[int] = mapped_column(Integer)
    cut_points_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Purchase(Base):
    """The ledger behind the windowed figures: a window can only be moved over purchases one still has."""

    __tablename__ = "purchase"

    purchase_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(index=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)  # net of refunds
    purchased_at: Mapped[datetime] = mapped_column(index=True)
    fully_refunded: Mapped[bool] = mapped_column(Boolean, default=False)


class BehaviourSignal(Base):
    """Something that raised a customer's risk points (a signal, a complaint, a poor survey)."""

    __tablename__ = "behaviour_signal"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    customer_id: Mapped[uuid.UUID] = mapped_column(index=True)
    kind: Mapped[str] = mapped_column(String(40))
    points: Mapped[float] = mapped_column(Float)
    occurred_at: Mapped[datetime] = mapped_column(index=True)
    cause_event_id: Mapped[uuid.UUID | None]


class TierChange(Base):
    """One announced change of a customer (tier, segment, stage, key account or risk), with its cause."""

    __tablename__ = "tier_change"

    # Time-ordered: the changes one batch records at one moment are listed in the order they were made.
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=ordered_id)
    customer_id: Mapped[uuid.UUID] = mapped_column(index=True)
    changed: Mapped[str] = mapped_column(String(100))  # e.g. "tier,stage"
    previous_tier: Mapped[str | None] = mapped_column(String(20))
    tier: Mapped[str] = mapped_column(String(20))
    previous_segment: Mapped[str | None] = mapped_column(String(30))
    segment: Mapped[str | None] = mapped_column(String(30))
    previous_stage: Mapped[str | None] = mapped_column(String(30))
    stage: Mapped[str | None] = mapped_column(String(30))
    previous_risk: Mapped[str | None] = mapped_column(String(20))
    risk: Mapped[str | None] = mapped_column(String(20))
    key_account: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str] = mapped_column(String(500))
    policy_version: Mapped[int] = mapped_column(Integer)
    cut_points_version: Mapped[int] = mapped_column(Integer, default=0)
    cause_event_id: Mapped[uuid.UUID | None]
    cause_event_type: Mapped[str | None] = mapped_column(String(100))
    changed_at: Mapped[datetime] = mapped_column(index=True)


class PolicyVersion(Base):
    """A stored version of the policy; the state row says which one is in force."""

    __tablename__ = "policy_version"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    note: Mapped[str | None] = mapped_column(String(500))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    applied_by: Mapped[str | None] = mapped_column(String(200))
    applied_at: Mapped[datetime | None]


class CutPointsVersion(Base):
    """What one batch computed from the population; assignments name the version they used."""

    __tablename__ = "cut_points"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    policy_version: Mapped[int] = mapped_column(Integer)
    method: Mapped[str] = mapped_column(String(20))
    trigger: Mapped[str] = mapped_column(String(40))
    population: Mapped[int] = mapped_column(Integer)
    recency_days: Mapped[list[int | None]] = mapped_column(JSON)
    frequency: Mapped[list[int | None]] = mapped_column(JSON)
    monetary_minor: Mapped[list[int | None]] = mapped_column(JSON)
    abc_a_min_minor: Mapped[int | None] = mapped_column(BigInteger)
    abc_b_min_minor: Mapped[int | None] = mapped_column(BigInteger)
    top_share_of_revenue: Mapped[float | None] = mapped_column(Float)
    bgnbd: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    window_start: Mapped[datetime]
    # The moment the figures are for (the analysis date); None in rows from before it was kept.
    as_of: Mapped[datetime | None]
    # Customers who bought before the window but not in it: ranked in none of the figures.
    dormant: Mapped[int] = mapped_column(Integer, default=0)
    # [share, least spend in minor units] for each revenue share a tier rule names.
    revenue_shares: Mapped[list[list[float | int | None]] | None] = mapped_column(JSON)
    computed_at: Mapped[datetime]


class SegmentationState(Base):
    """The one row saying which policy and cut points are in force, the window, and when to recompute."""

    __tablename__ = "segmentation_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    policy_version: Mapped[int] = mapped_column(Integer)
    cut_points_version: Mapped[int] = mapped_column(Integer, default=0)
    window_start: Mapped[datetime | None]
    # The pinned analysis date: everything is figured as of this moment until it is cleared.
    as_of: Mapped[datetime | None]
    next_recompute_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


# Who changed what and when, append-only (shared.audit).
audit_entry = audit.add_to(Base.metadata)
