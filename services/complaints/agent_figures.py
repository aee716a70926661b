"""Figures per agent and per team: SLA attainment, first response and resolution times (median and
90th percentile), first-contact resolution, CSAT and backlog. Pure.

A complaint counts for the person who holds it: its assignee, else its first owner. A team's
figures are computed over all its members' complaints together, not averaged over its members.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from services.complaints import analytics

# The columns of a row, in order: the CSV's header and the JSON's keys alike.
FIGURES = (
    "complaints",
    "sla_kept",
    "sla_decided",
    "sla_attainment",
    "first_response_count",
    "first_response_median_hours",
    "first_response_p90_hours",
    "resolution_count",
    "resolution_median_hours",
    "resolution_p90_hours",
    "first_contact_resolution_rate",
    "csat_answers",
    "csat_mean",
    "backlog",
)


@dataclass(frozen=True)
class HeldComplaint:
    """A complaint opened in the period, with who holds it and how its promises and survey went."""

    holder: str
    first_contact_resolution: bool | None
    clocks: Sequence[analytics.ClockFact]
    csat: Sequence[int]


def figures(complaints: Sequence[HeldComplaint], *, backlog: int) -> dict[str, float | int | None]:
    clocks = [clock for complaint in complaints for clock in complaint.clocks]
    kept, decided = analytics.tally(clocks)
    first_response = analytics.durations(clocks, "first_response")
    resolution = analytics.durations(clocks, "resolution")
    judged = [c.first_contact_resolution for c in complaints if c.first_contact_resolution is not None]
    answers = [csat for complaint in complaints for csat in complaint.csat]
    return {
        "complaints": len(complaints),
        "sla_kept": sum(kept.values()),
        "sla_decided": sum(decided.values()),
        "sla_attainment": analytics.rate(sum(kept.values()), sum(decided.values())),
        "first_response_count": first_response["count"],
        "first_response_median_hours": first_response["median_hours"],
        "first_response_p90_hours": first_response["p90_hours"],
        "resolution_count": resolution["count"],
        "resolution_median_hours": resolution["median_hours"],
        "resolution_p90_hours": resolution["p90_hours"],
        "first_contact_resolution_rate": analytics.rate(sum(judged), len(judged)),
        "csat_answers": len(answers),
        "csat_mean": round(sum(answers) / len(answers), 3) if answers else None,
        "backlog": backlog,
    }


def per_agent(
    complaints: Iterable[HeldComplaint], backlog: Mapping[str, int], *, people: Iterable[str] = ()
) -> dict[str, dict[str, float | int | None]]:
    """Figures for everyone who held a complaint, has a backlog, or is named in ``people``; by subject."""
    held: dict[str, list[HeldComplaint]] = {subject: [] for subject in people}
    for complaint in complaints:
        held.setdefault(complaint.holder, []).append(complaint)
    for subject in backlog:
        held.setdefault(subject, [])
    return {subject: figures(held[subject], backlog=backlog.get(subject, 0)) for subject in sorted(held)}


def per_team(
    complaints: Iterable[HeldComplaint], backlog: Mapping[str, int], members: Mapping[str, Iterable[str]]
) -> dict[str, dict[str, float | int | None]]:
    """Figures for each team over its members' complaints; a complaint counts in each team of its holder."""
    by_holder: dict[str, list[HeldComplaint]] = {}
    for complaint in complaints:
        by_holder.setdefault(complaint.holder, []).append(complaint)
    report = {}
    for team in sorted(members):
        subjects = set(members[team])
        report[team] = figures(
            [complaint for subject in sorted(subjects) for complaint in by_holder.get(subject, [])],
            backlog=sum(backlog.get(subject, 0) for subject in subjects),
        )
    return report
