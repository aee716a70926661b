"""Management figures from complaint facts: volume and trend, SLA attainment, response and
resolution times, first-contact resolution, reopens, recurring root causes, satisfaction. Pure."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

UNKNOWN_TIER = "unknown"


@dataclass(frozen=True)
class ComplaintFact:
    opened_at: datetime
    category: str
    channel: str
    tier: str | None
    root_cause: str | None
    first_contact_resolution: bool | None
    ever_resolved: bool
    reopened: bool


@dataclass(frozen=True)
class ClockFact:
    """One promise of one cycle, with the start of its cycle."""

    target: str
    cycle: int
    opened_at: datetime
    due_at: datetime | None
    met_at: datetime | None
    breached_at: datetime | None


def percentile(values: Sequence[float], share: float) -> float | None:
    """Nearest-rank percentile (share in 0..1); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(share * len(ordered))) - 1]


def rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def bucket_of(moment: datetime, *, weekly: bool) -> date:
    day = moment.date()
    return day - timedelta(days=day.weekday()) if weekly else day


def volume(facts: Sequence[ComplaintFact], *, since: datetime, until: datetime) -> dict[str, object]:
    weekly = until - since > timedelta(days=62)
    by_bucket: Counter[date] = Counter()
    by_bucket_category: dict[date, Counter[str]] = {}
    for fact in facts:
        bucket = bucket_of(fact.opened_at, weekly=weekly)
        by_bucket[bucket] += 1
        by_bucket_category.setdefault(bucket, Counter())[fact.category] += 1
    # Every bucket of the window appears, with zeros, so a trend line has no holes.
    buckets, cursor = [], bucket_of(since, weekly=weekly)
    while cursor < until.date() + timedelta(days=1):
        buckets.append(cursor)
        cursor += timedelta(days=7 if weekly else 1)
    return {
        "total": len(facts),
        "by_category": dict(Counter(f.category for f in facts).most_common()),
        "by_channel": dict(Counter(f.channel for f in facts).most_common()),
        "by_tier": dict(Counter(f.tier or UNKNOWN_TIER for f in facts).most_common()),
        "trend": {
            "bucket": "week" if weekly else "day",
            "points": [
                {
                    "start": bucket.isoformat(),
                    "count": by_bucket[bucket],
                    "by_category": dict(by_bucket_category.get(bucket, Counter())),
                }
                for bucket in buckets
            ],
        },
    }


def tally(clocks: Iterable[ClockFact]) -> tuple[Counter[str], Counter[str]]:
    """Promises kept and decided (kept or broken), per target; open ones are not judged yet."""
    kept: Counter[str] = Counter()
    decided: Counter[str] = Counter()
    for clock in clocks:
        if clock.breached_at is not None:
            decided[clock.target] += 1
        elif clock.met_at is not None:
            decided[clock.target] += 1
            if clock.due_at is None or clock.met_at <= clock.due_at:
                kept[clock.target] += 1
    return kept, decided


def attainment(clocks: Iterable[ClockFact]) -> dict[str, object]:
    """Of the promises decided (kept or broken), how many were kept; open ones are not judged yet."""
    kept, decided = tally(clocks)
    targets = {
        target: {
            "kept": kept[target],
            "decided": decided[target],
            "rate": rate(kept[target], decided[target]),
        }
        for target in sorted(decided)
    }
    return {"overall": rate(sum(kept.values()), sum(decided.values())), "by_target": targets}


def durations(clocks: Iterable[ClockFact], target: str) -> dict[str, float | int | None]:
    """Median and 90th percentile, in hours, from opening to meeting ``target`` in the first cycle."""
    hours = [
        (clock.met_at - clock.opened_at).total_seconds() / 3600
        for clock in clocks
        if clock.target == target and clock.cycle == 1 and clock.met_at is not None
    ]
    median, p90 = percentile(hours, 0.5), percentile(hours, 0.9)
    return {
        "count": len(hours),
        "median_hours": round(median, 3) if median is not None else None,
        "p90_hours": round(p90, 3) if p90 is not None else None,
    }


def resolution_quality(facts: Sequence[ComplaintFact]) -> dict[str, object]:
    judged = [f for f in facts if f.first_contact_resolution is not None]
    resolved = [f for f in facts if f.ever_resolved]
    return {
        "first_contact_resolution_rate": rate(
            sum(1 for f in judged if f.first_contact_resolution), len(judged)
        ),
        "reopen_rate": rate(sum(1 for f in resolved if f.reopened), len(resolved)),
        "resolved": len(resolved),
    }


def root_causes(facts: Sequence[ComplaintFact], *, top: int = 10) -> list[dict[str, object]]:
    """Root causes by how often they recur, with the categories of complaint they lie behind."""
    counts = Counter(f.root_cause for f in facts if f.root_cause)
    categories: dict[str, Counter[str]] = {}
    for fact in facts:
        if fact.root_cause:
            categories.setdefault(fact.root_cause, Counter())[fact.category] += 1
    total = sum(counts.values())
    return [
        {
            "root_cause": cause,
            "count": count,
            "share": rate(count, total),
            "recurring": count > 1,
            "categories": dict(categories[cause].most_common()),
        }
        for cause, count in counts.most_common(top)
    ]


def satisfaction(answers: Sequence[tuple[int, int | None, bool]]) -> dict[str, object]:
    """CSAT mean, the share of poor answers, and NPS (promoters minus detractors, in points)."""
    csat = [answer[0] for answer in answers]
    nps = [answer[1] for answer in answers if answer[1] is not None]
    promoters, detractors = sum(1 for n in nps if n >= 9), sum(1 for n in nps if n <= 6)
    return {
        "answers": len(answers),
        "csat_mean": round(sum(csat) / len(csat), 3) if csat else None,
        "poor_rate": rate(sum(1 for answer in answers if answer[2]), len(answers)),
        "nps": round(100 * (promoters - detractors) / len(nps), 1) if nps else None,
    }


def report(
    facts: Sequence[ComplaintFact],
    clocks: Sequence[ClockFact],
    answers: Sequence[tuple[int, int | None, bool]],
    *,
    since: datetime,
    until: datetime,
) -> dict[str, object]:
    return {
        "since": since.isoformat(),
        "until": until.isoformat(),
        "volume": volume(facts, since=since, until=until),
        "sla_attainment": attainment(clocks),
        "first_response_time": durations(clocks, "first_response"),
        "resolution_time": durations(clocks, "resolution"),
        **resolution_quality(facts),
        "root_causes": root_causes(facts),
        "satisfaction": satisfaction(answers),
    }
