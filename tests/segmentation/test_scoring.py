"""Scoring and policy on hand-computed cases, and the batch held to the per-event answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from services.segmentation import rfm
from services.segmentation.assessment import (
    ABC,
    RISK_OF_CAUSE,
    SEGMENTS,
    STAGES,
    TIERS,
    CutPoints,
    Facts,
    Population,
    RiskCause,
    assess,
    assess_population,
)
from services.segmentation.policy import DEFAULT_POLICY, AbcClass, Policy, RfmSegment, TierRule
from shared.events.segmentation import ChurnRisk, LoyaltyStage, Tier, tier_rank

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def test_a_lone_customer_and_a_population_of_equals_score_in_the_middle() -> None:
    assert rfm.midrank_thresholds([700]) == (700, 700, None, None)
    assert rfm.score_at_least(700, rfm.midrank_thresholds([700])) == 3
    equal = rfm.midrank_thresholds([500] * 10)
    assert {rfm.score_at_least(500, equal)} == {3}


def test_ties_get_equal_scores_from_their_mid_rank() -> None:
    # 60% one-time buyers, 25% twice, 15% three times: mid-rank percentiles 0.30, 0.725, 0.925.
    frequency = [1] * 12 + [2] * 5 + [3] * 3
    thresholds = rfm.midrank_thresholds(frequency)
    assert thresholds == (1, 2, 2, 3)
    assert [rfm.score_at_least(f, thresholds) for f in (1, 2, 3)] == [2, 4, 5]


def test_no_purchases_means_no_thresholds_and_no_scores() -> None:
    assert rfm.midrank_thresholds([]) == rfm.NO_THRESHOLDS
    facts = Facts(0, 0, 0, None, None)
    verdict = assess(facts, DEFAULT_POLICY, _cut_points([5, 10], [1, 2], [100, 200]), NOW)
    assert verdict.scores is None and verdict.segment is None and verdict.abc_class is None
    assert (
        verdict.value_group is not None
        and verdict.value_group.value == "potential"
        and verdict.stage is LoyaltyStage.suspicion
    )
    assert verdict.tier is Tier.lead


def test_recency_scores_fewer_days_higher() -> None:
    thresholds = rfm.quintile_thresholds(
        np.array([1, 10, 100, 200, 400]), np.ones(5, np.int64), np.ones(5, np.int64)
    )
    assert [rfm.score_within(d, thresholds.recency_days) for d in (1, 10, 100, 200, 400)] == [5, 4, 3, 2, 1]


def test_abc_classes_by_cumulative_revenue_share() -> None:
    # Revenue 1000: 600 + 250 = 85% (the customer crossing 80% is in A), then 100 (95%), then 30 + 20.
    thresholds = rfm.abc_thresholds([600, 250, 100, 30, 20], a_share=0.8, b_share=0.15)
    assert thresholds == rfm.AbcThresholds(250, 100)
    assert [rfm.abc_class(m, thresholds) for m in (600, 250, 100, 30, 0)] == [
        AbcClass.A,
        AbcClass.A,
        AbcClass.B,
        AbcClass.C,
        AbcClass.C,
    ]
    assert rfm.top_share_of_revenue([600, 250, 100, 30, 20], top_share=0.2) == pytest.approx(0.6)


def test_all_equal_amounts_are_all_class_a_and_a_zero_total_has_no_classes() -> None:
    assert rfm.abc_thresholds([100] * 5, a_share=0.8, b_share=0.15) == rfm.AbcThresholds(100, 100)
    assert rfm.abc_thresholds([0, 0], a_share=0.8, b_share=0.15) == rfm.AbcThresholds(None, None)


def test_a_refund_that_brings_the_total_to_zero_scores_lowest_and_class_c() -> None:
    cut = _cut_points([5, 50], [1, 3], [1000, 50000])
    refunded = Facts(1, 0, 1, NOW - timedelta(days=5), NOW - timedelta(days=5))
    verdict = assess(refunded, DEFAULT_POLICY, cut, NOW)
    assert verdict.scores is not None and verdict.scores[2] == 1
    assert verdict.abc_class is AbcClass.C and verdict.tier is Tier.lead


def test_segments_cover_every_score_pair_and_name_the_usual_groups() -> None:
    table = rfm.segment_table(DEFAULT_POLICY.segment_rules)
    assert len(table) == 25 and set(table.values()) == set(RfmSegment)
    assert table[(5, 5)] is RfmSegment.champions and table[(1, 5)] is RfmSegment.cant_lose_them
    assert table[(5, 1)] is RfmSegment.new and table[(1, 1)] is RfmSegment.lost


def test_a_policy_whose_segments_leave_a_gap_is_refused() -> None:
    document = DEFAULT_POLICY.model_dump()
    document["segment_rules"] = document["segment_rules"][:1] + document["segment_rules"][2:]  # no "loyal"
    with pytest.raises(ValidationError, match="without a segment"):
        Policy.model_validate(document)


@pytest.mark.parametrize(
    ("monetary", "frequency", "tier"),
    [
        ("0", 0, Tier.lead),
        ("999.99", 3, Tier.lead),
        ("1000.00", 1, Tier.iron),
        ("10000.00", 1, Tier.gold),
        ("50000.00", 4, Tier.gold),
        ("50000.00", 5, Tier.platinum),
    ],
)
def test_default_tiers_without_cut_points(monetary: str, frequency: int, tier: Tier) -> None:
    minor = int(Decimal(monetary) * 100)
    facts = Facts(frequency, minor, frequency, NOW - timedelta(days=3), NOW - timedelta(days=1))
    assert (
        assess(facts, DEFAULT_POLICY, CutPoints(0, None, rfm.AbcThresholds(None, None), None), NOW).tier
        == tier
    )


def test_class_a_is_gold_whatever_it_spent_and_the_rule_that_fired_is_named() -> None:
    # Class A from 450 up (the first 80% of 1,050); the first 40% is the 500 alone (platinum).
    cut = _cut_points([10, 100, 50], [1, 2, 1], [100, 500, 450])
    verdict = assess(
        Facts(1, 460, 1, NOW - timedelta(days=1), NOW - timedelta(days=1)), DEFAULT_POLICY, cut, NOW
    )
    assert verdict.abc_class is AbcClass.A and verdict.tier is Tier.gold
    assert verdict.rule == "gold: ABC class A"


def test_a_key_account_overrides_the_rules() -> None:
    facts = Facts(0, 0, 0, None, None, key_account=True)
    verdict = assess(facts, DEFAULT_POLICY, CutPoints(0, None, rfm.AbcThresholds(None, None), None), NOW)
    assert verdict.tier is Tier.platinum and "key account" in verdict.rule


def test_stages_from_purchases_interactions_and_surveys() -> None:
    policy, cut = DEFAULT_POLICY, CutPoints(0, None, rfm.AbcThresholds(None, None), None)
    day = NOW - timedelta(days=1)
    stages = [
        assess(Facts(0, 0, 0, None, None), policy, cut, NOW).stage,
        assess(Facts(0, 0, 0, None, None, engaged=True), policy, cut, NOW).stage,
        assess(Facts(1, 100, 1, day, day), policy, cut, NOW).stage,
        assess(Facts(2, 100, 2, day, day), policy, cut, NOW).stage,
        assess(Facts(2, 100, 2, day, day, last_nps=9), policy, cut, NOW).stage,
    ]
    assert stages == list(LoyaltyStage)


def test_risk_follows_the_customers_own_rhythm_and_signals() -> None:
    policy, cut = DEFAULT_POLICY, CutPoints(0, None, rfm.AbcThresholds(None, None), None)
    first = NOW - timedelta(days=100)

    def risk(last_days_ago: float, points: float = 0.0) -> ChurnRisk:
        # Five purchases over 40 days: a rhythm of 10 days.
        facts = Facts(5, 500, 5, first, first + timedelta(days=40), signal_points=points)
        return assess(facts, policy, cut, first + timedelta(days=40 + last_days_ago)).risk

    assert [risk(15), risk(20), risk(39), risk(40)] == [
        ChurnRisk.low,
        ChurnRisk.at_risk,
        ChurnRisk.at_risk,
        ChurnRisk.lost,
    ]
    assert risk(1, points=2.0) is ChurnRisk.at_risk


def test_a_tier_rule_can_require_low_risk() -> None:
    document = DEFAULT_POLICY.model_dump()
    document["tier_rules"] = [
        TierRule(tier=Tier.gold, min_monetary=Decimal(100), risks=(ChurnRisk.low,)),
        TierRule(tier=Tier.lead),
    ]
    policy = Policy.model_validate(document)
    cut = CutPoints(0, None, rfm.AbcThresholds(None, None), None)
    calm = Facts(1, 20_000, 1, NOW, NOW)
    assert assess(calm, policy, cut, NOW).tier is Tier.gold
    assert assess(Facts(1, 20_000, 1, NOW, NOW, signal_points=3), policy, cut, NOW).tier is Tier.lead


def _cut_points(recency: list[int], frequency: list[int], monetary: list[int]) -> CutPoints:
    thresholds = rfm.quintile_thresholds(np.array(recency), np.array(frequency), np.array(monetary))
    shares = DEFAULT_POLICY.revenue_shares()
    return CutPoints(
        1,
        thresholds,
        rfm.abc_thresholds(monetary, a_share=0.8, b_share=0.15),
        None,
        tuple(zip(shares, rfm.revenue_share_minimums(monetary, shares), strict=True)),
    )


customer = st.tuples(
    st.integers(0, 8),  # purchases
    st.integers(0, 2_000_000),  # spend in minor units
    st.integers(0, 400),  # days since the last purchase
    st.integers(0, 300),  # days between first and last
    st.booleans(),
    st.one_of(st.none(), st.integers(0, 10)),
    st.sampled_from([0.0, 1.0, 2.5]),
    st.booleans(),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(customer, min_size=1, max_size=30), st.lists(customer, min_size=1, max_size=10))
def test_the_batch_agrees_with_the_per_event_path(
    population: list[tuple[Any, ...]], probes: list[tuple[Any, ...]]
) -> None:
    def facts(row: tuple[Any, ...]) -> Facts:
        n, money, since, span, engaged, nps, points, key = row
        if n == 0:
            return Facts(0, 0, 0, None, None, engaged, nps, points, key)
        last = NOW - timedelta(days=since)
        return Facts(n, money, n, last - timedelta(days=span), last, engaged, nps, points, key)

    everyone = [facts(r) for r in population]
    buyers = [f for f in everyone if f.lifetime_frequency]
    cut = _cut_points(
        [int((NOW - f.last_purchase_at).total_seconds() // 86400) for f in buyers] or [0],  # type: ignore[operator]
        [f.frequency for f in buyers] or [0],
        [f.monetary_minor for f in buyers] or [0],
    )
    probe = [facts(r) for r in probes]

    def epoch(moment: datetime | None) -> float:
        return np.nan if moment is None else moment.timestamp()

    arrays = Population(
        frequency=np.array([f.frequency for f in probe], np.int64),
        monetary_minor=np.array([f.monetary_minor for f in probe], np.int64),
        lifetime_frequency=np.array([f.lifetime_frequency for f in probe], np.int64),
        first_purchase=np.array([epoch(f.first_purchase_at) for f in probe]),
        last_purchase=np.array([epoch(f.last_purchase_at) for f in probe]),
        engaged=np.array([f.engaged for f in probe]),
        last_nps=np.array([np.nan if f.last_nps is None else f.last_nps for f in probe]),
        signal_points=np.array([f.signal_points for f in probe]),
        key_account=np.array([f.key_account for f in probe]),
    )
    batch = assess_population(arrays, DEFAULT_POLICY, cut, NOW.timestamp())
    for i, one in enumerate(probe):
        verdict = assess(one, DEFAULT_POLICY, cut, NOW)
        assert TIERS[batch.tier[i]] is verdict.tier
        assert (SEGMENTS[batch.segment[i]] if batch.segment[i] >= 0 else None) == verdict.segment
        assert (ABC[batch.abc[i]] if batch.abc[i] >= 0 else None) == verdict.abc_class
        assert STAGES[batch.stage[i]] is verdict.stage
        assert RISK_OF_CAUSE[RiskCause(int(batch.risk_cause[i]))] is verdict.risk


@given(st.integers(0, 10**9), st.integers(0, 10**4), st.integers(0, 10**9))
def test_spending_more_never_lowers_the_tier(minor: int, frequency: int, extra: int) -> None:
    cut = CutPoints(0, None, rfm.AbcThresholds(None, None), None)
    day = NOW - timedelta(days=1)
    base = assess(Facts(frequency, minor, frequency, day, day), DEFAULT_POLICY, cut, NOW).tier
    richer = assess(Facts(frequency, minor + extra, frequency, day, day), DEFAULT_POLICY, cut, NOW).tier
    assert tier_rank(richer) <= tier_rank(base)


def test_a_lapsed_customer_is_never_loyal_or_a_champion_however_the_quintiles_fall() -> None:
    """In a history that ended long ago everyone is 'recent' relative to everyone else; the
    labels still say what the risk says."""
    long_ago = NOW - timedelta(days=28 * 365)
    lapsed = [
        Facts(n, 10_000 * n, n, long_ago - timedelta(days=400), long_ago + timedelta(days=d))
        for n, d in ((8, 30), (6, 20), (5, 10), (3, 5), (1, 1))
    ]
    cut = _cut_points(
        [int((NOW - f.last_purchase_at).days) for f in lapsed],  # type: ignore[operator]
        [f.frequency for f in lapsed],
        [f.monetary_minor for f in lapsed],
    )
    verdicts = [assess(f, DEFAULT_POLICY, cut, NOW) for f in lapsed]
    assert {v.risk for v in verdicts} == {ChurnRisk.lost}
    assert not {v.segment for v in verdicts} & {RfmSegment.loyal, RfmSegment.champions}
    assert verdicts[0].segment is RfmSegment.cant_lose_them, "the best of them, lapsed"
    arrays = Population(
        frequency=np.array([f.frequency for f in lapsed], np.int64),
        monetary_minor=np.array([f.monetary_minor for f in lapsed], np.int64),
        lifetime_frequency=np.array([f.lifetime_frequency for f in lapsed], np.int64),
        first_purchase=np.array([f.first_purchase_at.timestamp() for f in lapsed]),  # type: ignore[union-attr]
        last_purchase=np.array([f.last_purchase_at.timestamp() for f in lapsed]),  # type: ignore[union-attr]
        engaged=np.zeros(5, bool),
        last_nps=np.full(5, np.nan),
        signal_points=np.zeros(5),
        key_account=np.zeros(5, bool),
    )
    batch = assess_population(arrays, DEFAULT_POLICY, cut, NOW.timestamp())
    assert [SEGMENTS[code] for code in batch.segment] == [v.segment for v in verdicts]

    recent = Facts(8, 80_000, 8, NOW - timedelta(days=40), NOW - timedelta(days=1))
    assert assess(recent, DEFAULT_POLICY, cut, NOW).segment is RfmSegment.champions
