"""The SLA clock: time that counts toward a promise, on a calendar, stopped while the customer has the ball.

Pure: plain values in, plain values out. A promise ("respond within 2 hours") is a target
duration of *counting time*: time when the calendar is open (24x7, or business hours in a time
zone with holidays) and the complaint is not paused. The due time is the instant at which the
counting time since the start of the current cycle reaches the target. While a pause is open
there is no due time at all: it is computed again when the pause ends.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from services.complaints.workflow import PAUSED, Status

MINUTES_PER_DAY = 24 * 60
# A calendar open so rarely that a target is not reached in ten years is a broken calendar.
SEARCH_LIMIT_DAYS = 3660
# The local days a calendar keeps the spans of (about ten years of them) before it starts again.
_DAYS_KEPT = 4096

# A stretch of time [start, end); end None is open-ended (a pause still running, or 24x7 forever).
Span = tuple[datetime, datetime | None]
# Opening hours within a local day, in minutes since midnight: (540, 1080) is 09:00-18:00.
Hours = tuple[tuple[int, int], ...]


class CalendarError(ValueError):
    """A calendar that cannot carry a promise (no opening hours, bad intervals)."""


@dataclass(frozen=True)
class Calendar:
    """When the clock may run: always, or opening hours per weekday in a time zone, less holidays."""

    always_open: bool = False
    time_zone: str = "UTC"
    # Index 0 is Monday, as date.weekday() counts.
    weekly: tuple[Hours, ...] = ((),) * 7
    holidays: frozenset[date] = frozenset()
    # Hours for particular dates, overriding weekday and holiday: a make-up working Saturday, a short day.
    special: Mapping[date, Hours] = field(default_factory=dict)
    # Each local day looked at so far: the UTC instant of its midnight and its open spans in UTC. A
    # policy's calendar is built once and read for every promise; most promises look at the same days.
    _days: dict[date, tuple[datetime, tuple[tuple[datetime, datetime], ...]]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if self.always_open:
            return
        if len(self.weekly) != 7:
            raise CalendarError("weekly hours need seven days, Monday first")
        for hours in (*self.weekly, *self.special.values()):
            _check_hours(hours)
        if not any(self.weekly):
            raise CalendarError("a business-hours calendar must be open at some time of the week")
        ZoneInfo(self.time_zone)

    def hours_on(self, day: date) -> Hours:
        if day in self.special:
            return self.special[day]
        if day in self.holidays:
            return ()
        return self.weekly[day.weekday()]

    def open_spans(self, start: datetime, end: datetime | None = None) -> Iterator[Span]:
        """The spans within [start, end) when the calendar is open, in order, in UTC."""
        start = _utc(start)
        end = _utc(end) if end is not None else None
        if end is not None and end <= start:
            return
        if self.always_open:
            yield (start, end)
            return
        zone = ZoneInfo(self.time_zone)
        # Opening hours belong to local days; the previous day is looked at too, in case its
        # last interval ends after `start` in UTC terms.
        first_day = start.astimezone(zone).date() - timedelta(days=1)
        for offset in range(SEARCH_LIMIT_DAYS):
            day_start, spans = self._day(first_day + timedelta(days=offset), zone)
            if end is not None and day_start >= end:
                return
            for span_start, span_end in spans:
                if span_end <= start:
                    continue
                if end is not None and span_start >= end:
                    return
                yield (max(span_start, start), span_end if end is None else min(span_end, end))
        raise CalendarError(
            f"the calendar is not open in the {SEARCH_LIMIT_DAYS} days after {start.isoformat()}"
        )

    def _day(self, day: date, zone: ZoneInfo) -> tuple[datetime, tuple[tuple[datetime, datetime], ...]]:
        """The UTC instant of a local day's midnight, and the day's open spans in UTC (kept)."""
        known = self._days.get(day)
        if known is None:
            if len(self._days) >= _DAYS_KEPT:
                self._days.clear()
            spans = tuple(
                (_local(day, opening, zone), _local(day, closing, zone))
                for opening, closing in self.hours_on(day)
            )
            known = self._days[day] = (_local(day, 0, zone), spans)
        return known


ALWAYS = Calendar(always_open=True)


@dataclass(frozen=True)
class Timeline:
    """One SLA cycle of a complaint: when its clock started, and the stretches it stood still."""

    started_at: datetime
    pauses: tuple[Span, ...] = ()

    @property
    def paused(self) -> bool:
        return bool(self.pauses) and self.pauses[-1][1] is None


class ReopenRule(StrEnum):
    """What a reopen does to the promise."""

    # The customer gets the full promise again, counted from the reopen.
    restart = "restart"
    # The clock goes on from where the resolution stopped it; the time spent resolved does not count.
    resume = "resume"


def timeline_of(
    history: Sequence[tuple[Status, datetime]],
    *,
    opened_at: datetime,
    reopen: ReopenRule = ReopenRule.restart,
) -> Timeline:
    """The current cycle's timeline from the statuses a complaint entered, oldest first."""
    started_at = _utc(opened_at)
    pauses: list[Span] = []
    pause_start: datetime | None = None
    resolved_at: datetime | None = None
    for status, raw_at in history:
        at = _utc(raw_at)
        if pause_start is not None and status not in PAUSED:
            pauses.append((pause_start, at))
            pause_start = None
        if status in PAUSED and pause_start is None:
            pause_start = at
        elif status in (Status.resolved, Status.closed):
            resolved_at = resolved_at or at
        elif status is Status.reopened:
            if reopen is ReopenRule.restart:
                started_at, pauses = at, []
            elif resolved_at is not None:
                pauses.append((resolved_at, at))
            resolved_at = None
        if status not in (Status.resolved, Status.closed):
            resolved_at = None
    if pause_start is not None:
        pauses.append((pause_start, None))
    return Timeline(started_at=started_at, pauses=tuple(pauses))


def running_spans(calendar: Calendar, timeline: Timeline, until: datetime | None = None) -> Iterator[Span]:
    """The spans in which the clock runs: the calendar is open and the complaint is not paused."""
    pauses = _merged(timeline.pauses)
    for span in calendar.open_spans(timeline.started_at, until):
        yield from _without(span, pauses)
        if span[1] is None:
            return
        if pauses and pauses[-1][1] is None and span[1] > pauses[-1][0]:
            return  # the clock stands still from here on


def counted(calendar: Calendar, timeline: Timeline, until: datetime) -> timedelta:
    """Counting time from the start of the cycle until ``until``."""
    total = timedelta(0)
    for start, end in running_spans(calendar, timeline, _utc(until)):
        assert end is not None
        total += end - start
    return total


def deadline(calendar: Calendar, timeline: Timeline, target: timedelta) -> datetime | None:
    """When the counting time reaches ``target``; None while the clock is paused short of it."""
    [when] = deadlines(calendar, timeline, [target])
    return when


def deadlines(calendar: Calendar, timeline: Timeline, targets: Sequence[timedelta]) -> list[datetime | None]:
    """``deadline`` of each target, in one walk of the running spans."""
    found: list[datetime | None] = [None] * len(targets)
    waiting = sorted(range(len(targets)), key=lambda index: targets[index])
    while waiting and targets[waiting[0]] <= timedelta(0):
        found[waiting.pop(0)] = timeline.started_at
    counted_so_far = timedelta(0)
    spans = running_spans(calendar, timeline) if waiting else iter(())
    for start, end in spans:
        while waiting and (end is None or counted_so_far + (end - start) >= targets[waiting[0]]):
            index = waiting.pop(0)
            found[index] = start + (targets[index] - counted_so_far)
        if not waiting:
            break
        assert end is not None
        counted_so_far += end - start
    return found


def used_share(calendar: Calendar, timeline: Timeline, target: timedelta, now: datetime) -> float:
    """How much of the target the counting time has used by ``now`` (1.0 is the due time)."""
    if target <= timedelta(0):
        return 1.0
    return counted(calendar, timeline, now) / target


@dataclass(frozen=True)
class Reading:
    """Where one promise stands: its due time, when to warn, and whether it was kept."""

    due_at: datetime | None
    warn_at: datetime | None
    met_at: datetime | None = None

    @property
    def kept(self) -> bool | None:
        """True or False once met; None while still open."""
        if self.met_at is None:
            return None
        return self.due_at is None or self.met_at <= self.due_at


def read(
    calendar: Calendar,
    timeline: Timeline,
    target: timedelta,
    *,
    warning_share: float,
    met_at: datetime | None = None,
) -> Reading:
    """Due and warning times of one target on one timeline; a met target keeps its due time for the record."""
    if met_at is not None:
        # Judge the promise by the pauses before it was met: later ones must not move it.
        met_at = _utc(met_at)
        before = tuple(
            (start, met_at if end is None or end > met_at else end)
            for start, end in timeline.pauses
            if start < met_at
        )
        timeline = Timeline(timeline.started_at, before)
    due_at, warn_at = deadlines(calendar, timeline, [target, target * warning_share])
    return Reading(due_at=due_at, warn_at=warn_at, met_at=met_at)


def _check_hours(hours: Hours) -> None:
    previous_end = -1
    for opening, closing in hours:
        if not 0 <= opening < closing <= MINUTES_PER_DAY:
            raise CalendarError(f"opening hours {opening}-{closing} are not within one day")
        if opening < previous_end:
            raise CalendarError("opening hours of a day must be in order and must not overlap")
        previous_end = closing


def _local(day: date, minute: int, zone: ZoneInfo) -> datetime:
    """The UTC instant of a wall-clock minute on a local day (24:00 is the next midnight)."""
    if minute == MINUTES_PER_DAY:
        day, minute = day + timedelta(days=1), 0
    wall = datetime.combine(day, time(minute // 60, minute % 60), tzinfo=zone)
    # A wall time skipped by a DST change is read with the offset before the change, i.e. just after it.
    return wall.astimezone(UTC)


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("the SLA clock works on aware datetimes")
    return moment.astimezone(UTC)


def _merged(pauses: Iterable[Span]) -> list[Span]:
    """Pauses in order with overlaps joined, so subtraction can walk them once."""
    merged: list[Span] = []
    for start, end in sorted(((_utc(s), _utc(e) if e else None) for s, e in pauses), key=lambda p: p[0]):
        if merged:
            last_start, last_end = merged[-1]
            if last_end is None or start <= last_end:
                merged[-1] = (last_start, None if last_end is None or end is None else max(last_end, end))
                continue
        merged.append((start, end))
    return merged


def _without(span: Span, pauses: Sequence[Span]) -> Iterator[Span]:
    """``span`` with the paused stretches cut out."""
    start, end = span
    for pause_start, pause_end in pauses:
        if end is not None and pause_start >= end:
            break
        if pause_end is not None and pause_end <= start:
            continue
        if pause_start > start:
            yield (start, pause_start)
        if pause_end is None:
            return
        start = max(start, pause_end)
        if end is not None and start >= end:
            return
    yield (start, end)
