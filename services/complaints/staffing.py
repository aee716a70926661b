"""Who can take work now: working hours in a person's time zone, capacity, the least-loaded. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def on_duty(working_hours: Mapping[str, Sequence[str]], time_zone: str, at: datetime) -> bool:
    """Whether ``at`` falls in the person's hours ("HH:MM-HH:MM" per weekday, local time).

    No hours at all means none were recorded: the person is not limited to any.
    """
    if not any(working_hours.values()):
        return True
    local = at.astimezone(ZoneInfo(time_zone))
    minute = local.hour * 60 + local.minute
    for interval in working_hours.get(WEEKDAYS[local.weekday()], ()):
        opening, closing = (_minutes(part) for part in interval.split("-"))
        if opening <= minute < closing:
            return True
    return False


@dataclass(frozen=True)
class Candidate:
    subject: str
    load: int
    capacity: int
    on_duty: bool
    skills: frozenset[str] = field(default_factory=frozenset)
    languages: frozenset[str] = field(default_factory=frozenset)


def least_loaded(
    candidates: Iterable[Candidate], *, skill: str | None = None, language: str | None = None
) -> str | None:
    """The on-duty person with room, the needed skill and language, and the lowest share of capacity in use.

    Ties go to the fewer open complaints, then to the subject, so that the choice is repeatable.
    Languages match on the primary tag: a person who speaks ``zh`` serves ``zh-CN``.
    """
    wanted_language = language.split("-")[0].lower() if language else None
    fitting = [
        candidate
        for candidate in candidates
        if candidate.on_duty
        and candidate.load < candidate.capacity
        and (skill is None or skill in candidate.skills)
        and (
            wanted_language is None
            or wanted_language in {tag.split("-")[0].lower() for tag in candidate.languages}
        )
    ]
    if not fitting:
        return None
    best = min(fitting, key=lambda c: (c.load / c.capacity, c.load, c.subject))
    return best.subject
