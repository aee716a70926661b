"""Which customers each figure ranks (buyers in the window; the dormant apart) and the default pyramid."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from services.segmentation import rfm
from services.segmentation.assessment import (
    ABC,
    SEGMENTS,
    TIERS,
    Population,
    assess_population,
)
from services.segmentation.batch import compute_cut_points
from services.segmentation.policy import DEFAULT_POLICY, Policy, RfmSegment
from shared.events.segmentation import Tier

NOW = datetime(2026, 6, 1, tzinfo=UTC).timestamp()
DAY = 86_400.0
NO_MODEL: Policy = DEFAULT_POLICY.model_copy(
    update={"bgnbd": DEFAULT_POLICY.bgnbd.model_copy(update={"enabled": False})}
)


def population(
    frequency: list[int],
    monetary: list[int],
    lifetime: list[int],
    days_since_last: list[float],
    span_days: list[float] | None = None,
) -> Population:
    n = len(frequency)
    last = np.array([np.nan if d < 0 else NOW - d * DAY for d in days_since_last])
    span = np.array(span_days if span_days is not None else [0.0] * n)
    return Population(
        frequency=np.array(frequency, np.int64),
        monetary_minor=np.array(monetary, np.int64),
        lifetime_frequency=np.array(lifetime, np.int64),
        first_purchase=last - span * DAY,
        last_purchase=last,
        engaged=np.zeros(n, bool),
        last_nps=np.full(n, np.nan),
        signal_points=np.zeros(n),
        key_account=np.zeros(n, bool),
    )


def test_a_revenue_share_is_cut_as_the_abc_classes_are() -> None:
    spend = [1000, 500, 300, 100, 50, 50]  # 2,000 in all
    # The first 40% (800) is crossed by the 1,000 alone; the first 80% (1,600) by the 300.
    assert rfm.revenue_share_minimums(spend, (0.4, 0.8)) == [1000, 300]
    assert rfm.abc_thresholds(spend, a_share=0.8, b_share=0.15) == rfm.AbcThresholds(300, 100)
    assert rfm.revenue_share_minimums([0, 0], (0.4,)) == [None], "nobody has revenue: nobody qualifies"


def test_cut_points_rank_the_buyers_in_the_window_and_the_dormant_are_counted_apart() -> None:
    # Three bought in the window; two bought only before it (dormant); one never bought.
    found = population(
        frequency=[1, 2, 5, 0, 0, 0],
        monetary=[100, 200, 1000, 0, 0, 0],
        lifetime=[1, 2, 5, 3, 9, 0],
        days_since_last=[3, 30, 10, 500, 700, -1],
        span_days=[0, 20, 100, 200, 300, 0],
    )
    cut_points, extra = compute_cut_points(found, NO_MODEL, version=1, now=NOW, seed=0)
    assert (extra["population"], extra["dormant"]) == (3, 2)
    # The quintiles are those of the three buyers alone: dormant zeros would drag them down.
    assert cut_points.rfm == rfm.quintile_thresholds(
        np.array([3, 30, 10]), np.array([1, 2, 5]), np.array([100, 200, 1000])
    )
    assert extra["top_share_of_revenue"] == 1000 / 1300, "the top 20% of three buyers is one"
    result = assess_population(found, NO_MODEL, cut_points, NOW)
    assert [ABC[c].value if c >= 0 else None for c in result.abc] == ["B", "A", "A", None, None, None]
    # The dormant are still labelled: lapsed, so recency scores 1 and never loyal or a champion.
    assert [SEGMENTS[c] for c in result.segment[3:5]] == [RfmSegment.lost, RfmSegment.lost]
    assert list(result.recency_score[3:5]) == [1, 1]


def long_tailed(customers: int, seed: int) -> Population:
    """Spend log-normal (the top fifth brings about 80%), purchases geometric, a year's window."""
    rng = np.random.default_rng(seed)
    frequency = rng.geometric(0.45, customers)
    monetary = (np.exp(rng.normal(np.log(40), 1.5, customers)) * frequency * 100).astype(np.int64)
    since = rng.uniform(0, 365 / frequency)  # who buys often bought lately
    span = rng.uniform(0, 300, customers) * (frequency > 1)
    return population(list(frequency), list(monetary), list(frequency), list(since), list(span))


def tier_counts(found: Population, policy: Policy) -> dict[Tier, int]:
    cut_points, _ = compute_cut_points(found, policy, version=1, now=NOW, seed=0)
    tiers = assess_population(found, policy, cut_points, NOW).tier
    return {tier: int(np.count_nonzero(tiers == i)) for i, tier in enumerate(TIERS)}


def test_the_default_tiers_form_a_pyramid_on_long_tailed_spend() -> None:
    for seed in range(3):
        counts = tier_counts(long_tailed(5000, seed), NO_MODEL)
        layers = [counts[t] for t in (Tier.platinum, Tier.gold, Tier.iron, Tier.lead)]
        assert 0 < layers[0] < layers[1] < layers[2] < layers[3], (seed, counts)


customer = st.tuples(
    st.integers(1, 99_999),  # spend in minor units: below every absolute amount of the rules
    st.integers(1, 6),  # purchases in the window
    st.integers(0, 360),  # days since the last purchase
)


@settings(max_examples=100, deadline=None)
@given(st.lists(customer, min_size=1, max_size=200, unique_by=lambda c: c[0]))
def test_platinum_never_outnumbers_gold_but_for_the_customer_crossing_the_boundary(
    customers: list[tuple[int, int, int]],
) -> None:
    """Platinum and gold's relative rules take equal shares of revenue, platinum's from the biggest
    spenders: so it holds at most one more customer than gold (the one crossing its boundary),
    however frequency and recency fall."""
    spend, frequency, since = (list(column) for column in zip(*customers, strict=True))
    spans = [30.0 * (n - 1) for n in frequency]
    counts = tier_counts(population(frequency, spend, frequency, since, spans), NO_MODEL)
    assert counts[Tier.platinum] <= counts[Tier.gold] + 1, counts
