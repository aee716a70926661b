"""Request and response models of the segmentation API."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.segmentation.policy import AbcClass, Policy, RfmSegment
from shared.events.segmentation import ChurnRisk, LoyaltyStage, Tier, ValueGroup


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SegmentFigures(BaseModel):
    recency_days: int | None
    frequency: int
    monetary: Decimal
    currency: str
    first_purchase_at: datetime | None
    last_purchase_at: datetime | None


class Scores(BaseModel):
    recency: int
    frequency: int
    monetary: int
    total: int


class CoverageRead(BaseModel):
    """What the figures cover: the moment, the window, and the population ranked."""

    as_of: datetime = Field(description="The moment everything is figured as of (the analysis date).")
    pinned: bool = Field(
        description="Whether that moment is a pinned analysis date (kept by every recompute until cleared)."
    )
    window_start: datetime | None
    population: str = Field(
        default="buyers_in_window",
        description="RFM cut points, ABC classes and the Pareto figures rank the customers with at least "
        "one purchase in the window (free orders included).",
    )
    buyers: int = Field(description="Customers with at least one purchase in the window.")
    dormant: int = Field(
        description="Customers who bought only before the window: counted apart, ranked in no figure."
    )
    no_purchases_in_window: bool
    message: str | None = Field(description="Says so when the window holds no purchases at all.")


class CutPointsRead(BaseModel):
    """Score thresholds: a recency score is 1 plus the thresholds the days are within; the others, reached."""

    version: int
    method: str
    trigger: str
    population: int
    recency_days: list[int | None]
    frequency: list[int | None]
    monetary: list[Decimal | None]
    abc_a_min: Decimal | None
    abc_b_min: Decimal | None
    top_share_of_revenue: float | None
    bgnbd: dict[str, Any] | None
    window_start: datetime
    as_of: datetime | None = Field(description="The moment the cut points were figured as of.")
    dormant: int
    revenue_shares: list[dict[str, Any]] = Field(
        description="For each revenue share a tier rule names, the least spend of those bringing it."
    )
    computed_at: datetime


class KeyAccountRead(BaseModel):
    designated_by: str | None
    reason: str | None
    at: datetime | None


class SegmentRead(BaseModel):
    customer_id: uuid.UUID
    tier: Tier
    figures: SegmentFigures
    rule: str
    key_account: bool
    key_account_designation: KeyAccountRead | None
    segment: RfmSegment | None
    value_group: ValueGroup | None
    abc_class: AbcClass | None
    stage: LoyaltyStage
    risk: ChurnRisk
    risk_reason: str
    probability_alive: float | None
    expected_purchases: float | None = Field(description="BG/NBD expectation over the policy's horizon.")
    expected_purchases_days: int
    lifetime_frequency: int
    signal_points: float
    scores: Scores | None
    policy_version: int
    cut_points_version: int
    cut_points: CutPointsRead | None
    updated_at: datetime


class TierChangeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    changed: list[str]
    previous_tier: Tier | None
    tier: Tier
    previous_segment: str | None
    segment: str | None
    previous_stage: str | None
    stage: str | None
    previous_risk: str | None
    risk: str | None
    key_account: bool
    reason: str
    policy_version: int
    cut_points_version: int
    cause_event_id: uuid.UUID | None
    cause_event_type: str | None
    changed_at: datetime

    @field_validator("changed", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return [part for part in value.split(",") if part] if isinstance(value, str) else value


class KeyAccountUpdate(_Input):
    key_account: bool
    reason: str = Field(min_length=3, max_length=500, description="Why: kept with who set it.")


class PolicyDraft(_Input):
    policy: Policy
    note: str | None = Field(default=None, max_length=500)


class PolicyRead(BaseModel):
    version: int
    in_force: bool
    policy: Policy
    note: str | None
    created_by: str
    created_at: datetime
    applied_by: str | None
    applied_at: datetime | None


class OutcomeRead(BaseModel):
    """Customers assessed, how many moved in each dimension, and the tier migration matrix (from -> to)."""

    customers: int
    buyers: int
    changed: dict[str, int]
    matrix: dict[str, dict[str, int]]
    policy_version: int
    cut_points_version: int | None = None
    rewritten: int | None = None
    announced: int | None = None
    seconds: float | None = None
    coverage: CoverageRead


class DistributionRead(BaseModel):
    customers: int
    key_accounts: int
    tier: dict[str, int]
    segment: dict[str, int]
    value_group: dict[str, int]
    abc_class: dict[str, int]
    stage: dict[str, int]
    risk: dict[str, int]
    coverage: CoverageRead


class ParetoPoint(BaseModel):
    customers_share: float
    revenue_share: float


class ParetoRead(BaseModel):
    buyers: int
    revenue: Decimal
    top_share: float
    top_share_of_revenue: float | None
    curve: list[ParetoPoint]
    coverage: CoverageRead


class MigrationRead(BaseModel):
    start: datetime
    end: datetime
    matrix: dict[str, dict[str, int]] = Field(
        description="Tier at start (or 'none': not yet a customer) -> at end."
    )


class RetentionRow(BaseModel):
    period_start: date
    tier: Tier
    buyers_before: int = Field(
        description="Customers who bought in the previous period (tier at this period's start)."
    )
    retained: int
    retention_rate: float | None
    churn_rate: float | None


class RetentionRead(BaseModel):
    period: str
    rows: list[RetentionRow]
