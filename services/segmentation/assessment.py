"""Where one customer stands: tier, RFM scores and segment, ABC class, loyalty stage and churn risk.

``assess`` is the per-event path (plain Python, a few microseconds); ``assess_population`` is the
same rules over numpy arrays for the batch. Tests hold the two to the same answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum

import numpy as np
import numpy.typing as npt

from services.segmentation import btyd, rfm
from services.segmentation.policy import AbcClass, Policy, RfmSegment, TierRule
from services.segmentation.rfm import AbcThresholds, RfmThresholds
from shared.events.segmentation import TIER_ORDER, ChurnRisk, LoyaltyStage, Tier, ValueGroup
from shared.money import to_minor

DAY_SECONDS = 86_400.0
KEY_ACCOUNT_RULE = -1


@dataclass(frozen=True)
class CutPoints:
    """What the batch computed from the population, and the per-event path scores against."""

    version: int
    # Named as the fields of the batch's result; the types are imported by name, as ``rfm`` is taken.
    rfm: RfmThresholds | None
    abc: AbcThresholds
    bgnbd: btyd.Parameters | None
    # (share, least spend among the customers bringing that first share of revenue) per share
    # a tier rule names; a share missing here admits nobody.
    revenue_shares: tuple[tuple[float, int | None], ...] = ()

    def revenue_share_minimum(self, share: float) -> int | None:
        # The last pair naming the share holds, as a dict of the pairs would say (no dict per customer).
        for named, least in reversed(self.revenue_shares):
            if named == share:
                return least
        return None


NO_CUT_POINTS = CutPoints(version=0, rfm=None, abc=rfm.AbcThresholds(None, None), bgnbd=None)


@dataclass(frozen=True)
class Facts:
    """What segmentation knows about one customer."""

    frequency: int
    monetary_minor: int
    lifetime_frequency: int
    first_purchase_at: datetime | None
    last_purchase_at: datetime | None
    engaged: bool = False
    last_nps: int | None = None
    signal_points: float = 0.0
    key_account: bool = False
    # Days with a purchase (several orders on one day are one transaction to the models); None:
    # as many as purchases.
    purchase_days: int | None = None


class RiskCause(IntEnum):
    not_buying_yet = 0
    steady = 1
    lapsed = 2
    signals = 3
    unlikely_alive = 4
    lost_lapse = 5
    lost_long_silence = 6


@dataclass(frozen=True)
class Assessment:
    tier: Tier
    rule: str
    scores: tuple[int, int, int] | None
    segment: RfmSegment | None
    abc_class: AbcClass | None
    value_group: ValueGroup | None
    stage: LoyaltyStage
    risk: ChurnRisk
    risk_reason: str
    probability_alive: float | None
    expected_purchases: float | None


def days_between(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds() / DAY_SECONDS


def _admits(
    rule: TierRule,
    min_monetary_minor: int | None,
    facts: Facts,
    scores: tuple[int, int, int] | None,
    abc: AbcClass | None,
    segment: RfmSegment | None,
    risk: ChurnRisk,
    cut_points: CutPoints,
) -> bool:
    if rule.top_revenue_share is not None:
        least = cut_points.revenue_share_minimum(rule.top_revenue_share)
        if least is None or facts.frequency <= 0 or facts.monetary_minor < least:
            return False
    if rule.risks is not None and risk not in rule.risks:
        return False
    if min_monetary_minor is not None and facts.monetary_minor < min_monetary_minor:
        return False
    if rule.min_frequency is not None and facts.frequency < rule.min_frequency:
        return False
    if rule.abc_classes is not None and abc not in rule.abc_classes:
        return False
    if rule.segments is not None and segment not in rule.segments:
        return False
    score_conditions = (
        rule.min_recency_score,
        rule.min_frequency_score,
        rule.min_monetary_score,
        rule.min_rfm_total,
    )
    if any(c is not None for c in score_conditions):
        if scores is None:
            return False
        r, f, m = scores
        for minimum, value in zip(score_conditions, (r, f, m, r + f + m), strict=True):
            if minimum is not None and value < minimum:
                return False
    return True


def stage_of(facts: Facts, policy: Policy) -> LoyaltyStage:
    if facts.lifetime_frequency <= 0:
        return LoyaltyStage.expectation if facts.engaged else LoyaltyStage.suspicion
    if facts.lifetime_frequency < policy.loyalty.repeat_min_purchases:
        return LoyaltyStage.first_time_buyer
    if facts.last_nps is not None and facts.last_nps >= policy.loyalty.advocate_min_nps:
        return LoyaltyStage.advocate
    return LoyaltyStage.repeat_buyer


def rhythm_days(lifetime_frequency: int, span_days: float, policy: Policy) -> float:
    """Mean days between a customer's purchases (their own rhythm), never below the policy's minimum."""
    repeats = lifetime_frequency - 1
    rhythm = span_days / repeats if repeats >= 1 else policy.risk.one_purchase_rhythm_days
    return max(rhythm, policy.risk.min_rhythm_days)


def risk_cause(
    *,
    lifetime_frequency: int,
    since_last_days: float,
    span_days: float,
    signal_points: float,
    probability_alive: float | None,
    policy: Policy,
) -> RiskCause:
    if lifetime_frequency <= 0:
        return RiskCause.not_buying_yet
    risk = policy.risk
    lapse = since_last_days / rhythm_days(lifetime_frequency, span_days, policy)
    if since_last_days >= risk.lost_after_days:
        return RiskCause.lost_long_silence
    if lapse >= risk.lost_lapse:
        return RiskCause.lost_lapse
    if lapse >= risk.at_risk_lapse:
        return RiskCause.lapsed
    if signal_points >= risk.at_risk_signal_points:
        return RiskCause.signals
    if probability_alive is not None and probability_alive < risk.at_risk_probability_alive:
        return RiskCause.unlikely_alive
    return RiskCause.steady


RISK_OF_CAUSE = {
    RiskCause.not_buying_yet: ChurnRisk.low,
    RiskCause.steady: ChurnRisk.low,
    RiskCause.lapsed: ChurnRisk.at_risk,
    RiskCause.signals: ChurnRisk.at_risk,
    RiskCause.unlikely_alive: ChurnRisk.at_risk,
    RiskCause.lost_lapse: ChurnRisk.lost,
    RiskCause.lost_long_silence: ChurnRisk.lost,
}


def explain_risk(cause: RiskCause, policy: Policy) -> str:
    return _prepared(policy).risk_reasons[cause]


def _risk_reasons(policy: Policy) -> dict[RiskCause, str]:
    risk = policy.risk
    return {
        RiskCause.not_buying_yet: "has not bought yet",
        RiskCause.steady: "buying in their usual rhythm",
        RiskCause.lapsed: f"no purchase for {risk.at_risk_lapse:g}x their usual interval",
        RiskCause.signals: f"behaviour signals reached {risk.at_risk_signal_points:g} points",
        RiskCause.unlikely_alive: f"BG/NBD probability alive below {risk.at_risk_probability_alive:g}",
        RiskCause.lost_lapse: f"no purchase for {risk.lost_lapse:g}x their usual interval",
        RiskCause.lost_long_silence: f"no purchase for {risk.lost_after_days} days",
    }


@dataclass(frozen=True)
class _Prepared:
    """What ``assess`` reads of a policy, worked out once per policy rather than once per customer."""

    segments: dict[tuple[int, int], RfmSegment]
    risk_reasons: dict[RiskCause, str]
    # The tier rules from the top down, each with its minimum spend in minor units and its description.
    tier_rules: tuple[tuple[TierRule, int | None, str], ...]
    key_account_rule: str


# Policies are immutable: what was worked out for one holds as long as it lives (the cache holds
# it, so its id is not another's meanwhile). An operator stores a few versions in a service's life.
_PREPARED: dict[int, tuple[Policy, _Prepared]] = {}


def _prepared(policy: Policy) -> _Prepared:
    found = _PREPARED.get(id(policy))
    if found is not None and found[0] is policy:
        return found[1]
    if len(_PREPARED) >= 64:
        _PREPARED.clear()
    prepared = _Prepared(
        segments=rfm.segment_table(policy.segment_rules),
        risk_reasons=_risk_reasons(policy),
        tier_rules=tuple(
            (rule, None if rule.min_monetary is None else to_minor(rule.min_monetary), rule.describe())
            for rule in policy.ordered_tier_rules()
        ),
        key_account_rule=f"{policy.key_account_tier.value}: designated key account",
    )
    _PREPARED[id(policy)] = (policy, prepared)
    return prepared


def model_time(facts: Facts, now: datetime, unit_days: float) -> tuple[float, float, float] | None:
    """(x, t_x, T) of the buying model in its time unit (x: repeat purchase days), or None for a customer
    who never bought."""
    if facts.lifetime_frequency <= 0 or facts.first_purchase_at is None or facts.last_purchase_at is None:
        return None
    t_x = max(0.0, days_between(facts.last_purchase_at, facts.first_purchase_at)) / unit_days
    age = max(t_x, days_between(now, facts.first_purchase_at) / unit_days)
    x = max(0, (facts.lifetime_frequency if facts.purchase_days is None else facts.purchase_days) - 1)
    return float(x), (t_x if x > 0 else 0.0), age


def _lapsed(risk: ChurnRisk, window_frequency: int) -> bool:
    """Lost, or no purchase in the window: recency scores 1 however the population is spread."""
    return risk is ChurnRisk.lost or window_frequency <= 0


def assess(facts: Facts, policy: Policy, cut_points: CutPoints, now: datetime) -> Assessment:
    prepared = _prepared(policy)
    bought = facts.lifetime_frequency > 0 and facts.last_purchase_at is not None
    scores: tuple[int, int, int] | None = None
    segment: RfmSegment | None = None
    if bought and cut_points.rfm is not None:
        assert facts.last_purchase_at is not None
        recency = int(days_between(now, facts.last_purchase_at) // 1)
        scores = (
            rfm.score_within(recency, cut_points.rfm.recency_days),
            rfm.score_at_least(facts.frequency, cut_points.rfm.frequency),
            rfm.score_at_least(facts.monetary_minor, cut_points.rfm.monetary_minor),
        )
        segment = prepared.segments[(scores[0], rfm.frequency_monetary(scores[1], scores[2]))]
    # The ABC classes rank the buyers in the window; a dormant customer is in none of them.
    abc = rfm.abc_class(facts.monetary_minor, cut_points.abc) if bought and facts.frequency > 0 else None
    if not bought:
        value_group: ValueGroup | None = ValueGroup.potential
    else:
        value_group = policy.value_groups[abc] if abc is not None else None

    p_alive: float | None = None
    expected: float | None = None
    times = model_time(facts, now, policy.bgnbd.time_unit_days)
    if cut_points.bgnbd is not None and times is not None and policy.bgnbd.enabled:
        p_alive = btyd.probability_alive(cut_points.bgnbd, *times)
        expected = btyd.expected_purchases(
            cut_points.bgnbd, *times, policy.bgnbd.horizon_days / policy.bgnbd.time_unit_days
        )
    since_last = days_between(now, facts.last_purchase_at) if bought and facts.last_purchase_at else 0.0
    span = (
        days_between(facts.last_purchase_at, facts.first_purchase_at)
        if facts.last_purchase_at and facts.first_purchase_at
        else 0.0
    )
    cause = risk_cause(
        lifetime_frequency=facts.lifetime_frequency,
        since_last_days=since_last,
        span_days=span,
        signal_points=facts.signal_points,
        probability_alive=p_alive,
        policy=policy,
    )
    risk = RISK_OF_CAUSE[cause]
    if scores is not None and _lapsed(risk, facts.frequency):
        # Whatever the quintiles say, a lapsed customer is not recent: never loyal or a champion.
        scores = (1, scores[1], scores[2])
        segment = prepared.segments[(1, rfm.frequency_monetary(scores[1], scores[2]))]
    if facts.key_account:
        tier, rule = policy.key_account_tier, prepared.key_account_rule
    else:
        tier, rule = Tier.lead, "lead: no rule admitted the customer"
        for candidate, min_monetary_minor, description in prepared.tier_rules:
            if _admits(candidate, min_monetary_minor, facts, scores, abc, segment, risk, cut_points):
                tier, rule = candidate.tier, description
                break
    return Assessment(
        tier=tier,
        rule=rule,
        scores=scores,
        segment=segment,
        abc_class=abc,
        value_group=value_group,
        stage=stage_of(facts, policy),
        risk=risk,
        risk_reason=prepared.risk_reasons[cause],
        probability_alive=p_alive,
        expected_purchases=expected,
    )


# --- The same rules over a whole population (the batch) ------------------------------------------

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]

TIERS = list(TIER_ORDER)
SEGMENTS = list(RfmSegment)
ABC = list(AbcClass)
STAGES = list(LoyaltyStage)
RISKS = list(ChurnRisk)


@dataclass
class Population:
    """Facts of many customers as arrays; times are seconds since the epoch (NaN when absent)."""

    frequency: Ints
    monetary_minor: Ints
    lifetime_frequency: Ints
    first_purchase: Floats
    last_purchase: Floats
    engaged: Bools
    last_nps: Floats
    signal_points: Floats
    key_account: Bools
    # As Facts.purchase_days; None: as many as purchases.
    purchase_days: Ints | None = None

    def __len__(self) -> int:
        return len(self.frequency)


@dataclass
class PopulationAssessment:
    """Codes into TIERS, SEGMENTS (-1: none), ABC (-1: none), STAGES; risk causes; rule (-1: key account)."""

    tier: Ints
    rule: Ints
    recency_score: Ints
    frequency_score: Ints
    monetary_score: Ints
    segment: Ints
    abc: Ints
    stage: Ints
    risk_cause: Ints
    probability_alive: Floats
    # Purchase days expected over the policy's horizon (NaN: no model, or never bought).
    expected_purchases: Floats


def recency_days(population: Population, now: float) -> Ints:
    with np.errstate(invalid="ignore"):
        days = np.floor((now - population.last_purchase) / DAY_SECONDS)
    return np.nan_to_num(days, nan=0).astype(np.int64)


def assess_population(
    population: Population, policy: Policy, cut_points: CutPoints, now: float
) -> PopulationAssessment:
    n = len(population)
    bought = (population.lifetime_frequency > 0) & ~np.isnan(population.last_purchase)
    minus_one = np.full(n, -1, dtype=np.int64)
    r_score, f_score, m_score, segment = (
        minus_one.copy(),
        minus_one.copy(),
        minus_one.copy(),
        minus_one.copy(),
    )
    scored = np.zeros(n, dtype=bool)
    if cut_points.rfm is not None:
        scored = bought
        recency = recency_days(population, now)
        r_score = np.where(bought, rfm.scores_within(recency, cut_points.rfm.recency_days), -1)
        f_score = np.where(bought, rfm.scores_at_least(population.frequency, cut_points.rfm.frequency), -1)
        m_score = np.where(
            bought, rfm.scores_at_least(population.monetary_minor, cut_points.rfm.monetary_minor), -1
        )
        lookup = np.full((6, 6), -1, dtype=np.int64)
        for (r, fm), name in rfm.segment_table(policy.segment_rules).items():
            lookup[r, fm] = SEGMENTS.index(name)
        fm_score = (f_score + m_score + 1) // 2
        segment = np.where(bought, lookup[np.clip(r_score, 0, 5), np.clip(fm_score, 0, 5)], -1)

    abc = minus_one.copy()
    thresholds = cut_points.abc
    if thresholds.a_min_minor is not None and thresholds.b_min_minor is not None:
        money = population.monetary_minor
        abc = np.where(money >= thresholds.a_min_minor, 0, np.where(money >= thresholds.b_min_minor, 1, 2))
        abc = np.where(bought & (population.frequency > 0), abc, -1)

    loyalty = policy.loyalty
    stage = np.where(
        population.lifetime_frequency <= 0,
        np.where(
            population.engaged, STAGES.index(LoyaltyStage.expectation), STAGES.index(LoyaltyStage.suspicion)
        ),
        np.where(
            population.lifetime_frequency < loyalty.repeat_min_purchases,
            STAGES.index(LoyaltyStage.first_time_buyer),
            np.where(
                np.nan_to_num(population.last_nps, nan=-1) >= loyalty.advocate_min_nps,
                STAGES.index(LoyaltyStage.advocate),
                STAGES.index(LoyaltyStage.repeat_buyer),
            ),
        ),
    )

    with np.errstate(invalid="ignore"):
        since_last = np.where(bought, (now - population.last_purchase) / DAY_SECONDS, 0.0)
        span = np.where(bought, (population.last_purchase - population.first_purchase) / DAY_SECONDS, 0.0)
    repeats = population.lifetime_frequency - 1
    with np.errstate(divide="ignore", invalid="ignore"):
        rhythm = np.where(repeats >= 1, span / np.maximum(repeats, 1), policy.risk.one_purchase_rhythm_days)
    rhythm = np.maximum(rhythm, policy.risk.min_rhythm_days)
    lapse = since_last / rhythm

    p_alive = np.full(n, np.nan)
    expected = np.full(n, np.nan)
    if cut_points.bgnbd is not None and policy.bgnbd.enabled:
        unit = policy.bgnbd.time_unit_days * DAY_SECONDS
        t_x = np.where(
            bought, np.maximum(0.0, population.last_purchase - population.first_purchase) / unit, 0.0
        )
        age = np.where(bought, np.maximum(t_x, (now - population.first_purchase) / unit), 0.0)
        days = population.lifetime_frequency if population.purchase_days is None else population.purchase_days
        x = np.maximum(days - 1, 0).astype(float)
        t_x = np.where(x > 0, t_x, 0.0)
        p_alive = np.where(bought, btyd.probabilities_alive(cut_points.bgnbd, x, t_x, age), np.nan)
        horizon = policy.bgnbd.horizon_days / policy.bgnbd.time_unit_days
        with np.errstate(all="ignore"):
            expected = np.where(
                bought, btyd.expected_purchases_many(cut_points.bgnbd, x, t_x, age, horizon), np.nan
            )

    risk = policy.risk
    cause = np.select(
        [
            ~bought,
            since_last >= risk.lost_after_days,
            lapse >= risk.lost_lapse,
            lapse >= risk.at_risk_lapse,
            population.signal_points >= risk.at_risk_signal_points,
            np.nan_to_num(p_alive, nan=2.0) < risk.at_risk_probability_alive,
        ],
        [
            RiskCause.not_buying_yet,
            RiskCause.lost_long_silence,
            RiskCause.lost_lapse,
            RiskCause.lapsed,
            RiskCause.signals,
            RiskCause.unlikely_alive,
        ],
        default=RiskCause.steady,
    ).astype(np.int64)
    risk_code = np.array([RISKS.index(RISK_OF_CAUSE[c]) for c in RiskCause], dtype=np.int64)[cause]
    if cut_points.rfm is not None:
        lapsed = scored & ((risk_code == RISKS.index(ChurnRisk.lost)) | (population.frequency <= 0))
        r_score = np.where(lapsed, 1, r_score)
        segment = np.where(bought, lookup[np.clip(r_score, 0, 5), np.clip(fm_score, 0, 5)], -1)
    tier = np.full(n, TIERS.index(Tier.lead), dtype=np.int64)
    rule = np.full(n, len(policy.tier_rules), dtype=np.int64)  # "no rule admitted"
    undecided = np.ones(n, dtype=bool)
    for index, candidate in enumerate(policy.ordered_tier_rules()):
        admits = undecided.copy()
        if candidate.min_monetary is not None:
            admits &= population.monetary_minor >= to_minor(candidate.min_monetary)
        if candidate.min_frequency is not None:
            admits &= population.frequency >= candidate.min_frequency
        if candidate.abc_classes is not None:
            admits &= np.isin(abc, [ABC.index(c) for c in candidate.abc_classes])
        if candidate.top_revenue_share is not None:
            least = cut_points.revenue_share_minimum(candidate.top_revenue_share)
            if least is None:
                admits[:] = False
            else:
                admits &= (population.frequency > 0) & (population.monetary_minor >= least)
        if candidate.risks is not None:
            admits &= np.isin(risk_code, [RISKS.index(r) for r in candidate.risks])
        if candidate.segments is not None:
            admits &= np.isin(segment, [SEGMENTS.index(s) for s in candidate.segments])
        for minimum, values in (
            (candidate.min_recency_score, r_score),
            (candidate.min_frequency_score, f_score),
            (candidate.min_monetary_score, m_score),
            (candidate.min_rfm_total, r_score + f_score + m_score),
        ):
            if minimum is not None:
                admits &= scored & (values >= minimum)
        tier[admits] = TIERS.index(candidate.tier)
        rule[admits] = index
        undecided &= ~admits
    tier[population.key_account] = TIERS.index(policy.key_account_tier)
    rule[population.key_account] = KEY_ACCOUNT_RULE

    return PopulationAssessment(
        tier=tier,
        rule=rule,
        recency_score=r_score,
        frequency_score=f_score,
        monetary_score=m_score,
        segment=segment,
        abc=abc,
        stage=stage.astype(np.int64),
        risk_cause=cause,
        probability_alive=p_alive,
        expected_purchases=expected,
    )


def rule_text(policy: Policy, index: int) -> str:
    if index == KEY_ACCOUNT_RULE:
        return f"{policy.key_account_tier.value}: designated key account"
    rules = policy.ordered_tier_rules()
    return rules[index].describe() if index < len(rules) else "lead: no rule admitted the customer"
