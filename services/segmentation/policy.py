"""The segmentation policy as data: windows, cut-point method, tier rules, stages, risk thresholds.

Every figure the practice gives is a default here, never a constant: an operator stores a new
version through the API, tries it on the current population (what-if), and applies it.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from functools import cached_property
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.segmentation.btyd import DEFAULT_MODEL, BuyingModel
from shared.events.segmentation import ChurnRisk, LoyaltyStage, Tier, ValueGroup, tier_rank

Score = Annotated[int, Field(ge=1, le=5)]


# A century: a company's whole history fits in a window (a 1990s ledger analysed today needs
# over 30 years), and the window's start stays a date (no overflow).
MAX_WINDOW_DAYS = 36_600


class AbcClass(StrEnum):
    A = "A"
    B = "B"
    C = "C"


class RfmSegment(StrEnum):
    """The usual named RFM segments, from the scores of recency and of frequency-and-monetary."""

    champions = "champions"
    loyal = "loyal"
    potential_loyalist = "potential_loyalist"
    new = "new"
    promising = "promising"
    need_attention = "need_attention"
    about_to_sleep = "about_to_sleep"
    at_risk = "at_risk"
    cant_lose_them = "cant_lose_them"
    hibernating = "hibernating"
    lost = "lost"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TierRule(_Strict):
    """A customer meeting every condition given here is in ``tier``; unset conditions always hold.

    Several rules may name the same tier (any of them admits); rules are tried from the top of
    the pyramid down, so the first that admits decides.
    """

    tier: Tier
    min_monetary: Decimal | None = Field(
        default=None, ge=0, description="Net spend in the window, in the currency."
    )
    min_frequency: int | None = Field(default=None, ge=0, description="Purchases in the window.")
    abc_classes: tuple[AbcClass, ...] | None = Field(default=None, min_length=1)
    top_revenue_share: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description="Among the customers who bring this first share of the window's revenue, "
        "biggest spenders first (as the ABC classes are cut).",
    )
    min_recency_score: Score | None = None
    min_frequency_score: Score | None = None
    min_monetary_score: Score | None = None
    min_rfm_total: int | None = Field(default=None, ge=3, le=15, description="Sum of the three scores.")
    segments: tuple[RfmSegment, ...] | None = Field(default=None, min_length=1)
    risks: tuple[ChurnRisk, ...] | None = Field(
        default=None, min_length=1, description="e.g. only while low risk."
    )

    def describe(self) -> str:
        conditions = []
        if self.min_monetary is not None:
            conditions.append(f"spent at least {self.min_monetary:,}")
        if self.min_frequency is not None:
            conditions.append(f"bought at least {self.min_frequency} times")
        if self.abc_classes is not None:
            conditions.append("ABC class " + "/".join(c.value for c in self.abc_classes))
        if self.top_revenue_share is not None:
            conditions.append(f"among those bringing the first {self.top_revenue_share:.0%} of revenue")
        for label, value in (
            ("recency score", self.min_recency_score),
            ("frequency score", self.min_frequency_score),
            ("monetary score", self.min_monetary_score),
            ("RFM total", self.min_rfm_total),
        ):
            if value is not None:
                conditions.append(f"{label} at least {value}")
        if self.segments is not None:
            conditions.append("segment " + "/".join(s.value for s in self.segments))
        if self.risks is not None:
            conditions.append("risk " + "/".join(r.value for r in self.risks))
        return f"{self.tier.value}: " + (" and ".join(conditions) or "everyone else")


class SegmentRule(_Strict):
    """Customers whose recency score and frequency-monetary score fall in these ranges are ``segment``."""

    segment: RfmSegment
    recency: tuple[Score, Score]
    frequency_monetary: tuple[Score, Score]


class FixedCutPoints(_Strict):
    """Operator-given score thresholds (four each, ascending), for the ``fixed`` method."""

    recency_days: tuple[int, int, int, int]
    frequency: tuple[int, int, int, int]
    monetary: tuple[Decimal, Decimal, Decimal, Decimal]


class LoyaltyPolicy(_Strict):
    repeat_min_purchases: int = Field(default=2, ge=2)
    # A promoter in the NPS sense (9 or 10) who buys again is an advocate.
    advocate_min_nps: int = Field(default=9, ge=0, le=10)


class SignalPoints(_Strict):
    """How much each behaviour adds to a customer's risk points, which count for ``window_days``."""

    window_days: int = Field(default=90, ge=1, le=MAX_WINDOW_DAYS)
    late_payment: float = Field(default=1.0, ge=0)
    rude_to_staff: float = Field(default=1.0, ge=0)
    usage_drop: float = Field(default=1.0, ge=0)
    cancellation_request: float = Field(default=2.0, ge=0)
    complaint_low: float = Field(default=0.0, ge=0)
    complaint_normal: float = Field(default=0.5, ge=0)
    complaint_high: float = Field(default=1.0, ge=0)
    complaint_critical: float = Field(default=2.0, ge=0)
    resolved_outside_sla: float = Field(default=1.0, ge=0)
    poor_survey: float = Field(default=1.0, ge=0)


class RiskPolicy(_Strict):
    """A customer lapses against their own rhythm (mean days between purchases)."""

    one_purchase_rhythm_days: float = Field(
        default=90.0, gt=0, description="Rhythm assumed after one purchase."
    )
    min_rhythm_days: float = Field(default=7.0, gt=0)
    at_risk_lapse: float = Field(default=2.0, gt=0, description="Days since last purchase over rhythm.")
    lost_lapse: float = Field(default=4.0, gt=0)
    lost_after_days: int = Field(default=365, ge=1, description="Lost after this long without a purchase.")
    at_risk_signal_points: float = Field(default=2.0, gt=0)
    # Below this BG/NBD probability of being alive a customer is at risk (when a model is fitted).
    at_risk_probability_alive: float = Field(default=0.3, ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> RiskPolicy:
        if self.lost_lapse <= self.at_risk_lapse:
            raise ValueError("lost_lapse must be greater than at_risk_lapse")
        return self


class BgNbdPolicy(_Strict):
    """The buy-till-you-die model behind P(alive) and expected purchases (the section keeps its old name)."""

    enabled: bool = True
    # A policy stored before the choice existed takes the default: see btyd.py for the evidence.
    model: BuyingModel = DEFAULT_MODEL
    # The fit uses a random sample this large: the estimates' error is already tiny at this size.
    sample_size: int = Field(default=20_000, ge=100)
    # The sample is drawn with this seed: the same purchases give the same fit at every recompute.
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    min_customers: int = Field(default=100, ge=10, description="No fit below this many buyers.")
    time_unit_days: float = Field(
        default=7.0, gt=0, description="The model's time unit (weeks, as in the paper)."
    )
    horizon_days: int = Field(default=90, ge=1, description="'Next period' for expected purchases.")


class Policy(_Strict):
    """One version of the segmentation policy."""

    window_days: int = Field(
        default=365,
        ge=1,
        le=MAX_WINDOW_DAYS,
        description="Frequency and monetary count this window; long enough for a company's whole history.",
    )
    cut_points_method: Literal["quintiles", "fixed"] = "quintiles"
    fixed_cut_points: FixedCutPoints | None = None
    abc_a_share: float = Field(default=0.80, gt=0, lt=1, description="Class A: the first 80% of revenue.")
    abc_b_share: float = Field(default=0.15, gt=0, lt=1, description="Class B: the next 15%.")
    pareto_top_share: float = Field(
        default=0.20, gt=0, lt=1, description="The 'top 20%' of the 80/20 figure."
    )
    tier_rules: tuple[TierRule, ...] = Field(min_length=1)
    segment_rules: tuple[SegmentRule, ...] = Field(min_length=1)
    value_groups: dict[AbcClass, ValueGroup]
    loyalty: LoyaltyPolicy = LoyaltyPolicy()
    risk: RiskPolicy = RiskPolicy()
    signals: SignalPoints = SignalPoints()
    bgnbd: BgNbdPolicy = BgNbdPolicy()
    # A key account (designated by a person, with a reason) is placed here whatever the rules say.
    key_account_tier: Tier = Tier.platinum
    recompute_every_hours: float = Field(default=24.0, gt=0, le=24 * 31)

    @model_validator(mode="after")
    def _consistent(self) -> Policy:
        if self.abc_a_share + self.abc_b_share >= 1:
            raise ValueError("abc_a_share + abc_b_share must leave a share for class C")
        if self.cut_points_method == "fixed" and self.fixed_cut_points is None:
            raise ValueError("the fixed method needs fixed_cut_points")
        if set(self.value_groups) != set(AbcClass):
            raise ValueError("value_groups must map each of A, B and C")
        grid = {(r, fm) for r in range(1, 6) for fm in range(1, 6)}
        for rule in self.segment_rules:
            for low, high in (rule.recency, rule.frequency_monetary):
                if low > high:
                    raise ValueError(f"segment rule {rule.segment.value}: a range must be (low, high)")
            grid -= {
                (r, fm)
                for r in range(rule.recency[0], rule.recency[1] + 1)
                for fm in range(rule.frequency_monetary[0], rule.frequency_monetary[1] + 1)
            }
        if grid:
            raise ValueError(f"segment_rules leave score pairs without a segment, e.g. {sorted(grid)[0]}")
        return self

    def revenue_shares(self) -> tuple[float, ...]:
        """The revenue shares the tier rules name: the batch computes a spend threshold for each."""
        shares = {rule.top_revenue_share for rule in self.tier_rules}
        return tuple(sorted(share for share in shares if share is not None))

    @cached_property
    def _ordered_tier_rules(self) -> tuple[TierRule, ...]:
        return tuple(sorted(self.tier_rules, key=lambda rule: tier_rank(rule.tier)))

    def ordered_tier_rules(self) -> tuple[TierRule, ...]:
        """Rules from the top tier down; within a tier, in the order given (the policy is frozen)."""
        return self._ordered_tier_rules

    def signal_points(self) -> dict[str, float]:
        return self.signals.model_dump(exclude={"window_days"})


def _segment(name: RfmSegment, recency: tuple[int, int], fm: tuple[int, int]) -> SegmentRule:
    return SegmentRule(segment=name, recency=recency, frequency_monetary=fm)


DEFAULT_SEGMENT_RULES: tuple[SegmentRule, ...] = (
    _segment(RfmSegment.champions, (4, 5), (4, 5)),
    _segment(RfmSegment.loyal, (3, 5), (3, 5)),
    _segment(RfmSegment.new, (5, 5), (1, 1)),
    _segment(RfmSegment.promising, (4, 4), (1, 1)),
    _segment(RfmSegment.potential_loyalist, (4, 5), (2, 2)),
    _segment(RfmSegment.need_attention, (3, 3), (2, 2)),
    _segment(RfmSegment.about_to_sleep, (3, 3), (1, 1)),
    _segment(RfmSegment.cant_lose_them, (1, 1), (4, 5)),
    _segment(RfmSegment.at_risk, (1, 2), (3, 5)),
    _segment(RfmSegment.hibernating, (2, 2), (1, 2)),
    _segment(RfmSegment.lost, (1, 1), (1, 2)),
)

# The pyramid combines absolute spend (what a company promises its members) with the relative
# standing: class A (the customers bringing the first 80% of revenue) is gold at least, as the
# practice's 80/20 says, and platinum is the half of that revenue brought by the biggest
# spenders. Two equal shares of revenue, the first brought by customers who each spend at least
# as much as anyone in the second: so platinum never holds more customers than gold (ties
# aside), whatever the data. A platinum customer who is lost falls back to gold.
PLATINUM_REVENUE_SHARE = 0.40

DEFAULT_TIER_RULES: tuple[TierRule, ...] = (
    TierRule(tier=Tier.platinum, min_monetary=Decimal(50_000), min_frequency=5),
    TierRule(
        tier=Tier.platinum,
        top_revenue_share=PLATINUM_REVENUE_SHARE,
        risks=(ChurnRisk.low, ChurnRisk.at_risk),
    ),
    TierRule(tier=Tier.gold, min_monetary=Decimal(10_000)),
    TierRule(tier=Tier.gold, abc_classes=(AbcClass.A,)),
    TierRule(tier=Tier.iron, min_monetary=Decimal(1_000)),
    TierRule(tier=Tier.iron, abc_classes=(AbcClass.B,)),
    TierRule(tier=Tier.lead),
)

DEFAULT_POLICY = Policy(
    tier_rules=DEFAULT_TIER_RULES,
    segment_rules=DEFAULT_SEGMENT_RULES,
    value_groups={
        AbcClass.A: ValueGroup.high_value,
        AbcClass.B: ValueGroup.general,
        AbcClass.C: ValueGroup.low_value,
    },
)

STAGE_ORDER: tuple[LoyaltyStage, ...] = tuple(LoyaltyStage)
