"""Events the segmentation service publishes on ``csm.segmentation``."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import ClassVar

from pydantic import AwareDatetime, Field

from shared.events.base import Event

TOPIC = "csm.segmentation"


class Tier(StrEnum):
    """The customer pyramid, most valuable first."""

    platinum = "platinum"
    gold = "gold"
    iron = "iron"
    lead = "lead"


TIER_ORDER: tuple[Tier, ...] = (Tier.platinum, Tier.gold, Tier.iron, Tier.lead)


def tier_rank(tier: Tier) -> int:
    """0 for the top tier; larger is lower."""
    return TIER_ORDER.index(tier)


class ValueGroup(StrEnum):
    high_value = "high_value"
    general = "general"
    low_value = "low_value"
    potential = "potential"


class LoyaltyStage(StrEnum):
    suspicion = "suspicion"
    expectation = "expectation"
    first_time_buyer = "first_time_buyer"
    repeat_buyer = "repeat_buyer"
    advocate = "advocate"


class ChurnRisk(StrEnum):
    low = "low"
    at_risk = "at_risk"
    lost = "lost"


class MoveCause(StrEnum):
    """What moved a customer: only their own doing is news to them."""

    # Something the customer just did: a purchase, a refund, an interaction, a signal.
    customer_event = "customer_event"
    # The scheduled or on-demand recompute: time passed, cut points moved with everyone's spending.
    recompute = "recompute"
    # A manager applied a new policy.
    policy = "policy"
    # Imported history: a migration from the company's old system.
    imported = "imported"
    # A person decided it (a key-account designation).
    manual = "manual"
    # An operator set, kept or cleared the analysis date: everyone re-labelled as of another
    # moment (a history analysed as of its last day); nothing happened to anyone.
    analysis_date = "analysis_date"


_CAUSE = Field(
    default=MoveCause.customer_event,
    description="What moved the customer; by default only a customer_event move is celebrated to "
    "the customer (see the README on the causes of moves).",
)


class TierChanged(Event):
    """The customer's place in the pyramid (or segment, stage or key-account flag) changed."""

    type: ClassVar[str] = "csm.segment.tier_changed.v1"
    topic: ClassVar[str] = TOPIC

    previous_tier: Tier | None
    tier: Tier
    key_account: bool = False
    previous_segment: str | None = None
    segment: str | None = None
    value_group: ValueGroup | None = None
    previous_stage: LoyaltyStage | None = None
    stage: LoyaltyStage | None = None
    reason: str
    policy_version: int = Field(ge=0)
    cause_event_id: uuid.UUID | None = None
    imported: bool = Field(
        default=False, description="The cause was imported history (a migration), not something done today."
    )
    cause: MoveCause = _CAUSE
    changed_at: AwareDatetime


class RiskChanged(Event):
    """The customer's churn risk moved (a lapse against their own rhythm, or behaviour)."""

    type: ClassVar[str] = "csm.segment.risk_changed.v1"
    topic: ClassVar[str] = TOPIC

    previous_risk: ChurnRisk | None
    risk: ChurnRisk
    tier: Tier
    probability_alive: float | None = Field(default=None, ge=0, le=1)
    expected_purchases: float | None = Field(
        default=None,
        ge=0,
        description="Purchase days the buying model expects in the next expected_purchases_days.",
    )
    expected_purchases_days: int | None = Field(default=None, ge=1)
    reason: str
    policy_version: int = Field(ge=0)
    cause_event_id: uuid.UUID | None = None
    imported: bool = Field(
        default=False, description="The cause was imported history (a migration), not something done today."
    )
    cause: MoveCause = _CAUSE
    changed_at: AwareDatetime


EVENTS: tuple[type[Event], ...] = (TierChanged, RiskChanged)
