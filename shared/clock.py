"""Time as a dependency, so that deadlines, delays and quiet hours can be tested without waiting."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Protocol

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, WithJsonSchema


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC)

    def now(self) -> datetime:
        return self._now

    def set(self, moment: datetime) -> None:
        if moment.tzinfo is None:
            raise ValueError("the clock keeps aware datetimes")
        self._now = moment

    def advance(self, delta: timedelta) -> datetime:
        self._now += delta
        return self._now


# What a request may name as a moment: a company's history and plans, not year 1 or 9999 (which
# overflow date arithmetic, as a 500).
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def _to_utc(moment: datetime) -> datetime:
    try:
        in_utc = moment.astimezone(UTC)
    except OverflowError:
        in_utc = EARLIEST if moment.year < 2000 else LATEST
    if not EARLIEST <= in_utc < LATEST:
        raise ValueError(f"must be from {EARLIEST.year} up to {LATEST.year}")
    return in_utc


def _sane_date(day: date) -> date:
    if not EARLIEST.date() <= day < LATEST.date():
        raise ValueError(f"must be from {EARLIEST.year} up to {LATEST.year}")
    return day


def is_number(text: str) -> bool:
    """Whether ``text`` is written as a number (``19970101``, ``852076800.5``), not as a moment."""
    return text.strip().lstrip("+-").replace(".", "", 1).isdigit()


def _not_a_number(value: object) -> object:
    """A moment is written in ISO 8601; a number is never guessed to be a Unix timestamp.

    ``19970101`` is a date in someone's layout, not 1970-08-20 03:15:01 UTC.
    """
    if isinstance(value, bool | int | float) or (isinstance(value, str) and is_number(value)):
        raise ValueError(
            "must be an ISO 8601 date and time with its offset, e.g. 2026-12-04T09:30:00+08:00, not a number"
        )
    return value


# An input timestamp: ISO 8601 with its offset, kept in UTC from then on.
UtcDatetime = Annotated[AwareDatetime, BeforeValidator(_not_a_number), AfterValidator(_to_utc)]
# An input calendar day, in the same range.
CalendarDate = Annotated[date, AfterValidator(_sane_date)]


def _wall_clock(moment: time) -> time:
    if moment.tzinfo is not None:
        raise ValueError("a time of day on the customer's own clock: give it without an offset")
    return moment


# A time of day on someone's local clock (quiet hours): an offset would be silently meaningless.
# Documented as what it is, HH:MM[:SS[.ffffff]]: OpenAPI's ``format: time`` is RFC 3339's full-time,
# which must carry an offset, so every answer holding one broke its own document.
LocalTime = Annotated[
    time,
    AfterValidator(_wall_clock),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?$",
            "description": "A time of day on the local clock, without an offset: HH:MM[:SS[.ffffff]].",
            "examples": ["21:00"],
        }
    ),
]
