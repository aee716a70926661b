"""RFM, ABC and Pareto over a population: cut points from the batch, scores for one customer at a time.

Quintile cut points are *mid-rank* thresholds: a customer's percentile is the share of the
population below them plus half the share equal to them, and the score is 1 + ⌊5 × percentile⌋.
So customers with equal figures always get equal scores, a lone customer or a population of
equal customers scores 3 (the middle), and one-time buyers who are 60% of the population are not
scored as if they were the top. The batch turns this into four thresholds per dimension, which
is all the per-event path needs: scoring a new figure is four comparisons, whatever the size
of the population.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from services.segmentation.policy import AbcClass, FixedCutPoints, RfmSegment, SegmentRule
from shared.money import to_minor

Thresholds = tuple[int | None, int | None, int | None, int | None]
NO_THRESHOLDS: Thresholds = (None, None, None, None)
Ints = npt.NDArray[np.int64]


def midrank_thresholds(values: npt.ArrayLike) -> Thresholds:
    """For k = 1..4, the smallest value whose mid-rank percentile is at least k/5 (None: no such value)."""
    array = np.asarray(values, dtype=np.int64)
    n = len(array)
    if n == 0:
        return NO_THRESHOLDS
    unique, counts = np.unique(array, return_counts=True)
    below = np.cumsum(counts) - counts
    # percentile >= k/5  <=>  5 (2 below + count) >= 2 n k, in exact integers.
    scaled = 5 * (2 * below + counts)
    found = []
    for k in range(1, 5):
        index = int(np.searchsorted(scaled, 2 * n * k, side="left"))
        found.append(int(unique[index]) if index < len(unique) else None)
    return (found[0], found[1], found[2], found[3])


def score_at_least(value: int, thresholds: Sequence[int | None]) -> int:
    """Higher is better (frequency, monetary): 1 plus the thresholds the value reaches."""
    return 1 + sum(1 for t in thresholds if t is not None and value >= t)


def score_within(days: int, thresholds: Sequence[int | None]) -> int:
    """Lower is better (recency in days): 1 plus the thresholds the value is within."""
    return 1 + sum(1 for t in thresholds if t is not None and days <= t)


def scores_at_least(values: Ints, thresholds: Sequence[int | None]) -> Ints:
    result = np.ones(len(values), dtype=np.int64)
    for t in thresholds:
        if t is not None:
            result += values >= t
    return result


def scores_within(values: Ints, thresholds: Sequence[int | None]) -> Ints:
    result = np.ones(len(values), dtype=np.int64)
    for t in thresholds:
        if t is not None:
            result += values <= t
    return result


@dataclass(frozen=True)
class RfmThresholds:
    """Score thresholds: recency in whole days (within), frequency in purchases, monetary in minor units."""

    recency_days: Thresholds
    frequency: Thresholds
    monetary_minor: Thresholds


def quintile_thresholds(recency_days: Ints, frequency: Ints, monetary_minor: Ints) -> RfmThresholds:
    """Mid-rank quintiles of the buyers' figures (recency scored on negated days: fewer is better)."""
    negated = midrank_thresholds(-np.asarray(recency_days, dtype=np.int64))
    return RfmThresholds(
        recency_days=tuple(None if t is None else -t for t in negated),  # type: ignore[arg-type]
        frequency=midrank_thresholds(frequency),
        monetary_minor=midrank_thresholds(monetary_minor),
    )


def fixed_thresholds(fixed: FixedCutPoints) -> RfmThresholds:
    return RfmThresholds(
        recency_days=fixed.recency_days,
        frequency=fixed.frequency,
        monetary_minor=tuple(to_minor(m) for m in fixed.monetary),  # type: ignore[arg-type]
    )


def frequency_monetary(frequency_score: int, monetary_score: int) -> int:
    """The mean of the two scores, halves rounded up."""
    return (frequency_score + monetary_score + 1) // 2


def segment_table(rules: Sequence[SegmentRule]) -> dict[tuple[int, int], RfmSegment]:
    """(recency score, frequency-monetary score) -> segment; the first rule covering a pair wins."""
    table: dict[tuple[int, int], RfmSegment] = {}
    for rule in rules:
        for r in range(rule.recency[0], rule.recency[1] + 1):
            for fm in range(rule.frequency_monetary[0], rule.frequency_monetary[1] + 1):
                table.setdefault((r, fm), rule.segment)
    return table


@dataclass(frozen=True)
class AbcThresholds:
    """Minimum net spend (minor units) of class A and of class B; None when nobody has revenue."""

    a_min_minor: int | None
    b_min_minor: int | None


def abc_thresholds(monetary_minor: npt.ArrayLike, *, a_share: float, b_share: float) -> AbcThresholds:
    """Class A holds the customers who bring the first ``a_share`` of revenue, B the next ``b_share``.

    A customer belongs to a class if the revenue of everyone above them falls short of the class's
    cumulative share, so the customer who crosses the boundary is inside it; customers tied with
    the last member of a class join it (a class is a spend threshold, the same for everyone).
    """
    found = revenue_share_minimums(monetary_minor, (a_share, a_share + b_share))
    return AbcThresholds(found[0], found[1])


def revenue_share_minimums(monetary_minor: npt.ArrayLike, shares: Sequence[float]) -> list[int | None]:
    """For each share, the least spend among the customers who bring that first share of revenue.

    Customers are taken from the biggest spender down, as for the ABC classes; None when nobody
    has revenue.
    """
    spend = np.sort(np.asarray(monetary_minor, dtype=np.int64))[::-1]
    total = int(spend.sum())
    if total <= 0:
        return [None for _ in shares]
    before = (np.cumsum(spend) - spend).astype(object)
    found: list[int | None] = []
    for share in shares:
        # Shares in millionths and exact integers: 0.8 + 0.15 is not 0.95 in floating point.
        parts = round(share * 1_000_000)
        inside = int(np.count_nonzero(before * 1_000_000 < parts * total))
        found.append(int(spend[inside - 1]))
    return found


def abc_class(monetary_minor: int, thresholds: AbcThresholds) -> AbcClass | None:
    if thresholds.a_min_minor is None or thresholds.b_min_minor is None:
        return None
    if monetary_minor >= thresholds.a_min_minor:
        return AbcClass.A
    if monetary_minor >= thresholds.b_min_minor:
        return AbcClass.B
    return AbcClass.C


def top_share_of_revenue(monetary_minor: npt.ArrayLike, *, top_share: float) -> float | None:
    """The share of revenue brought by the top ``top_share`` of customers (the '80' of 80/20)."""
    spend = np.sort(np.asarray(monetary_minor, dtype=np.int64))[::-1]
    total = int(spend.sum())
    if len(spend) == 0 or total <= 0:
        return None
    head = max(1, math.ceil(top_share * len(spend)))
    return float(spend[:head].sum() / total)


def pareto_curve(monetary_minor: npt.ArrayLike, *, points: int = 100) -> list[tuple[float, float]]:
    """(share of customers, share of revenue they bring), customers taken from the biggest spender down."""
    spend = np.sort(np.asarray(monetary_minor, dtype=np.int64))[::-1]
    total = int(spend.sum())
    if len(spend) == 0 or total <= 0:
        return []
    cumulative = np.concatenate(([0], np.cumsum(spend)))
    curve = []
    for i in range(points + 1):
        customers = i / points
        head = round(customers * len(spend))
        curve.append((customers, float(cumulative[head] / total)))
    return curve
