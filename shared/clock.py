"""Time as a dependency, so that deadlines, delays and quiet hours can be tested without waiting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Protocol

from pydantic import AfterValidator, AwareDatetime


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


def _to_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


# An input timestamp: must carry its offset, and is kept in UTC from then on.
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
