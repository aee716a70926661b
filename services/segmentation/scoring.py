"""Tier assignment: pure functions of a customer's figures and the policy's rules."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from shared.events.segmentation import Tier
from shared.money import from_minor


@dataclass(frozen=True)
class Figures:
    """What a customer has bought: how often and how much (net of refunds), and when last."""

    frequency: int
    monetary_minor: int
    last_purchase_at: datetime | None

    @property
    def monetary(self) -> Decimal:
        return from_minor(self.monetary_minor)


class TierRule(BaseModel):
    """A customer who reaches both minimums is in ``tier``; rules are tried from the top tier down."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tier: Tier
    min_monetary: Decimal = Field(default=Decimal(0), ge=0)
    min_frequency: int = Field(default=0, ge=0)

    def admits(self, figures: Figures) -> bool:
        return figures.monetary >= self.min_monetary and figures.frequency >= self.min_frequency

    def describe(self) -> str:
        conditions = []
        if self.min_monetary:
            conditions.append(f"spent at least {self.min_monetary:,}")
        if self.min_frequency:
            conditions.append(f"bought at least {self.min_frequency} times")
        return f"{self.tier.value}: " + (" and ".join(conditions) or "everyone else")


DEFAULT_TIER_RULES: tuple[TierRule, ...] = (
    TierRule(tier=Tier.platinum, min_monetary=Decimal(50_000), min_frequency=5),
    TierRule(tier=Tier.gold, min_monetary=Decimal(10_000)),
    TierRule(tier=Tier.iron, min_monetary=Decimal(1_000)),
    TierRule(tier=Tier.lead),
)


@dataclass(frozen=True)
class TierDecision:
    tier: Tier
    rule: str


def assign_tier(figures: Figures, rules: Sequence[TierRule]) -> TierDecision:
    """The first rule, in pyramid order, that the figures satisfy; lead if none does."""
    for rule in sorted(rules, key=lambda r: list(Tier).index(r.tier)):
        if rule.admits(figures):
            return TierDecision(rule.tier, rule.describe())
    return TierDecision(Tier.lead, "lead: no rule admitted the customer")
