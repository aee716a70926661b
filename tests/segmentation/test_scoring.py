"""The tier rule on hand-computed cases."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.segmentation.scoring import DEFAULT_TIER_RULES, Figures, TierRule, assign_tier
from shared.events.segmentation import Tier, tier_rank


def figures(monetary: str, frequency: int = 1) -> Figures:
    minor = int(Decimal(monetary) * 100)
    return Figures(frequency=frequency, monetary_minor=minor, last_purchase_at=datetime(2026, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    ("monetary", "frequency", "tier"),
    [
        ("0", 0, Tier.lead),
        ("999.99", 3, Tier.lead),
        ("1000.00", 1, Tier.iron),  # a minimum is reached at the minimum
        ("9999.99", 9, Tier.iron),
        ("10000.00", 1, Tier.gold),
        ("49999.99", 20, Tier.gold),
        ("50000.00", 4, Tier.gold),  # enough money, too few purchases for platinum
        ("50000.00", 5, Tier.platinum),
    ],
)
def test_default_rules(monetary: str, frequency: int, tier: Tier) -> None:
    assert assign_tier(figures(monetary, frequency), DEFAULT_TIER_RULES).tier == tier


def test_the_decision_says_which_rule_fired() -> None:
    decision = assign_tier(figures("12000"), DEFAULT_TIER_RULES)
    assert decision.rule == "gold: spent at least 10,000"


def test_rules_apply_in_pyramid_order_whatever_order_they_are_given_in() -> None:
    shuffled = tuple(reversed(DEFAULT_TIER_RULES))
    assert assign_tier(figures("60000", 9), shuffled).tier == Tier.platinum


def test_with_no_rule_that_admits_the_customer_the_tier_is_lead() -> None:
    only_gold = (TierRule(tier=Tier.gold, min_monetary=Decimal(10_000)),)
    assert assign_tier(figures("5"), only_gold).tier == Tier.lead


@given(
    st.integers(min_value=0, max_value=10**9),
    st.integers(min_value=0, max_value=10**4),
    st.integers(min_value=0, max_value=10**9),
)
def test_spending_more_never_lowers_the_tier(minor: int, frequency: int, extra: int) -> None:
    base = Figures(frequency, minor, None)
    richer = Figures(frequency, minor + extra, None)
    assert tier_rank(assign_tier(richer, DEFAULT_TIER_RULES).tier) <= tier_rank(assign_tier(base, DEFAULT_TIER_RULES).tier)
