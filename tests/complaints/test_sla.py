"""The SLA clock on hand-computed cases, and properties that must hold for any calendar and pauses."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.complaints.policy import default_policy
from services.complaints.sla import (
    ALWAYS,
    Calendar,
    CalendarError,
    ReopenRule,
    Timeline,
    counted,
    deadline,
    deadlines,
    read,
    timeline_of,
    used_share,
)
from services.complaints.workflow import Status
from shared.events.complaints import Severity
from shared.events.segmentation import Tier

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
NINE_TO_SIX = ((9 * 60, 18 * 60),)
NINE_TO_FIVE = ((9 * 60, 17 * 60),)


def weekdays(hours: tuple[tuple[int, int], ...], **options: object) -> Calendar:
    return Calendar(weekly=(hours,) * 5 + ((), ()), **options)  # type: ignore[arg-type]


def at(year: int, month: int, day: int, hour: int, minute: int = 0, zone: ZoneInfo = SHANGHAI) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=zone)


SHANGHAI_OFFICE = weekdays(NINE_TO_SIX, time_zone="Asia/Shanghai", holidays=frozenset({date(2026, 11, 23)}))


def test_business_hours_skip_the_weekend_and_a_holiday() -> None:
    # Friday 16:00: two hours left that day; Saturday, Sunday and the holiday Monday are closed;
    # the other two hours are Tuesday 09:00-11:00.
    opened = at(2026, 11, 20, 16)
    due = deadline(SHANGHAI_OFFICE, Timeline(opened), timedelta(hours=4))
    assert due == at(2026, 11, 24, 11)
    assert counted(SHANGHAI_OFFICE, Timeline(opened), at(2026, 11, 23, 17)) == timedelta(hours=2)


def test_a_make_up_working_saturday_counts_and_a_short_day_counts_less() -> None:
    calendar = weekdays(
        NINE_TO_SIX,
        time_zone="Asia/Shanghai",
        special={date(2026, 11, 21): NINE_TO_SIX, date(2026, 11, 20): ((9 * 60, 17 * 60),)},
    )
    # Friday 16:00-17:00 (short day), Saturday 09:00-12:00 (make-up working day).
    assert deadline(calendar, Timeline(at(2026, 11, 20, 16)), timedelta(hours=4)) == at(2026, 11, 21, 12)


def test_a_pause_across_the_end_of_the_business_day_does_not_count() -> None:
    # Wednesday 10:00-16:00 counts six hours; paused until Thursday 10:00; two more hours: 12:00.
    opened = at(2026, 11, 25, 10)
    paused = Timeline(opened, ((at(2026, 11, 25, 16), at(2026, 11, 26, 10)),))
    assert deadline(SHANGHAI_OFFICE, Timeline(opened), timedelta(hours=8)) == at(2026, 11, 25, 18)
    assert deadline(SHANGHAI_OFFICE, paused, timedelta(hours=8)) == at(2026, 11, 26, 12)
    assert counted(SHANGHAI_OFFICE, paused, at(2026, 11, 26, 11)) == timedelta(hours=7)


def test_while_paused_there_is_no_due_time_unless_the_target_was_reached_before_the_pause() -> None:
    opened = at(2026, 11, 25, 10)
    still_paused = Timeline(opened, ((at(2026, 11, 25, 16), None),))
    assert still_paused.paused
    assert deadline(SHANGHAI_OFFICE, still_paused, timedelta(hours=8)) is None
    assert deadline(SHANGHAI_OFFICE, still_paused, timedelta(hours=5)) == at(2026, 11, 25, 15)
    assert counted(SHANGHAI_OFFICE, still_paused, at(2026, 12, 25, 10)) == timedelta(hours=6)


def test_business_hours_follow_the_local_clock_across_a_daylight_saving_change() -> None:
    # Berlin moves to summer time on Sunday 29 March 2026. Friday 15:00 CET leaves two hours;
    # the other two are Monday 09:00-11:00 CEST, which is 09:00 UTC, not 10:00.
    berlin = weekdays(NINE_TO_FIVE, time_zone="Europe/Berlin")
    due = deadline(berlin, Timeline(at(2026, 3, 27, 15, zone=BERLIN)), timedelta(hours=4))
    assert due == datetime(2026, 3, 30, 9, tzinfo=UTC)
    assert due == at(2026, 3, 30, 11, zone=BERLIN)


def test_a_local_day_is_23_hours_long_in_spring_and_25_in_autumn() -> None:
    round_the_clock = Calendar(weekly=(((0, 24 * 60),),) * 7, time_zone="Europe/Berlin")
    spring, autumn = Timeline(at(2026, 3, 29, 0, zone=BERLIN)), Timeline(at(2026, 10, 25, 0, zone=BERLIN))
    assert counted(round_the_clock, spring, at(2026, 3, 30, 0, zone=BERLIN)) == timedelta(hours=23)
    assert counted(round_the_clock, autumn, at(2026, 10, 26, 0, zone=BERLIN)) == timedelta(hours=25)
    # Counted time is real time: 24 hours from Saturday noon is Sunday 13:00 summer time.
    due = deadline(round_the_clock, Timeline(at(2026, 3, 28, 12, zone=BERLIN)), timedelta(hours=24))
    assert due == at(2026, 3, 29, 13, zone=BERLIN)


def test_a_tier_upgrade_mid_complaint_retargets_from_the_opening_under_the_tighter_promise() -> None:
    policy = default_policy()
    opened = at(2026, 11, 24, 10)  # a Tuesday
    iron = policy.target_for(Tier.iron, Severity.normal)
    iron_reading = read(
        policy.calendar(iron.calendar), Timeline(opened), iron.first_response, warning_share=0.75
    )
    assert iron_reading.due_at == at(2026, 11, 24, 14)  # 4 business hours
    assert iron_reading.warn_at == at(2026, 11, 24, 13)
    # At 11:00 the customer becomes gold: 2 hours around the clock, counted from the opening.
    gold = policy.target_for(Tier.gold, Severity.normal)
    gold_reading = read(
        policy.calendar(gold.calendar), Timeline(opened), gold.first_response, warning_share=0.75
    )
    assert gold_reading.due_at == at(2026, 11, 24, 12)
    assert gold_reading.warn_at == at(2026, 11, 24, 11, 30)
    assert (
        used_share(
            policy.calendar(gold.calendar), Timeline(opened), gold.first_response, at(2026, 11, 24, 11)
        )
        == 0.5
    )


def test_the_default_policy_carries_the_practices_figures() -> None:
    policy = default_policy()
    gold = policy.target_for(Tier.gold, Severity.normal)
    assert (gold.first_response, gold.on_site, gold.resolution) == (
        timedelta(hours=2),
        timedelta(hours=24),
        timedelta(hours=48),
    )
    platinum, iron = (
        policy.target_for(Tier.platinum, Severity.normal),
        policy.target_for(Tier.iron, Severity.low),
    )
    assert platinum.resolution < gold.resolution
    unknown = policy.target_for(None, Severity.normal)
    assert iron.calendar == unknown.calendar == "business_hours"
    assert (unknown.first_response, unknown.resolution) == (iron.first_response, iron.resolution)
    assert policy.target_for(Tier.lead, Severity.critical).calendar == "24x7"


HISTORY = [
    (Status.acknowledged, at(2026, 11, 23, 10)),
    (Status.resolved, at(2026, 11, 23, 20)),
    (Status.reopened, at(2026, 11, 25, 9)),
]


def test_a_reopen_restarts_the_promise_from_the_reopen() -> None:
    timeline = timeline_of(HISTORY, opened_at=at(2026, 11, 23, 9), reopen=ReopenRule.restart)
    assert timeline == Timeline(at(2026, 11, 25, 9))
    assert deadline(ALWAYS, timeline, timedelta(hours=48)) == at(2026, 11, 27, 9)


def test_a_reopen_may_resume_the_clock_without_counting_the_time_spent_resolved() -> None:
    timeline = timeline_of(HISTORY, opened_at=at(2026, 11, 23, 9), reopen=ReopenRule.resume)
    assert timeline.pauses == ((at(2026, 11, 23, 20), at(2026, 11, 25, 9)),)
    # 11 hours were used before the resolution; the remaining 37 run from Wednesday 09:00.
    assert deadline(ALWAYS, timeline, timedelta(hours=48)) == at(2026, 11, 26, 22)


def test_waiting_on_the_customer_becomes_a_pause_in_the_timeline() -> None:
    history = [
        (Status.acknowledged, at(2026, 11, 25, 9)),
        (Status.in_progress, at(2026, 11, 25, 9, 30)),
        (Status.waiting_on_customer, at(2026, 11, 25, 16)),
        (Status.in_progress, at(2026, 11, 26, 10)),
        (Status.waiting_on_customer, at(2026, 11, 26, 11)),
    ]
    timeline = timeline_of(history, opened_at=at(2026, 11, 25, 9))
    assert timeline.pauses == ((at(2026, 11, 25, 16), at(2026, 11, 26, 10)), (at(2026, 11, 26, 11), None))
    assert timeline.paused


def test_a_met_target_is_judged_by_the_pauses_before_it_was_met() -> None:
    opened = at(2026, 11, 25, 10)
    # Responded at 13:00 against a 2-hour promise; a later pause must not move the due time.
    later_pause = Timeline(opened, ((at(2026, 11, 25, 14), None),))
    reading = read(ALWAYS, later_pause, timedelta(hours=2), warning_share=0.75, met_at=at(2026, 11, 25, 13))
    assert reading.due_at == at(2026, 11, 25, 12) and reading.kept is False
    on_time = read(ALWAYS, later_pause, timedelta(hours=2), warning_share=0.75, met_at=at(2026, 11, 25, 11))
    assert on_time.kept is True


def test_a_calendar_that_is_never_open_is_refused() -> None:
    with pytest.raises(CalendarError):
        Calendar(time_zone="Asia/Shanghai")
    with pytest.raises(CalendarError):
        weekdays(((600, 540),))
    with pytest.raises(CalendarError):
        weekdays(((540, 720), (700, 800)))


# Properties, over 24x7 and business-hours calendars in several zones and any pauses.

START = datetime(2026, 1, 1, tzinfo=UTC)
moments = st.integers(min_value=0, max_value=60 * 24 * 40).map(
    lambda minutes: START + timedelta(minutes=minutes)
)
calendars = st.one_of(
    st.just(ALWAYS),
    st.builds(
        lambda zone, opening, length, holiday: weekdays(
            ((opening, min(opening + length, 24 * 60)),),
            time_zone=zone,
            holidays=frozenset({date(2026, 1, 1) + timedelta(days=holiday)}),
        ),
        st.sampled_from(["Asia/Shanghai", "Europe/Berlin", "America/New_York", "UTC"]),
        st.integers(min_value=0, max_value=20 * 60),
        st.integers(min_value=30, max_value=12 * 60),
        st.integers(min_value=0, max_value=40),
    ),
)


@st.composite
def timelines(draw: st.DrawFn) -> Timeline:
    started = draw(moments)
    cuts = sorted(draw(st.lists(moments.filter(lambda m: m > started), max_size=6, unique=True)))
    pauses = [(cuts[i], cuts[i + 1]) for i in range(0, len(cuts) - 1, 2)]
    if len(cuts) % 2 and draw(st.booleans()):
        pauses.append((cuts[-1], None))  # type: ignore[arg-type]
    return Timeline(started, tuple(pauses))


def open_time_in(calendar: Calendar, start: datetime, end: datetime) -> timedelta:
    return sum(((e - s) for s, e in calendar.open_spans(start, end)), timedelta(0))  # type: ignore[operator]


@settings(max_examples=150, deadline=None)
@given(calendars, timelines(), moments)
def test_paused_time_never_counts(calendar: Calendar, timeline: Timeline, until: datetime) -> None:
    without_pauses = counted(calendar, Timeline(timeline.started_at), until)
    paused_open_time = sum(
        (
            open_time_in(calendar, max(start, timeline.started_at), min(end or until, until))
            for start, end in timeline.pauses
        ),
        timedelta(0),
    )
    assert counted(calendar, timeline, until) == without_pauses - paused_open_time


@settings(max_examples=150, deadline=None)
@given(
    calendars, timelines(), st.integers(min_value=1, max_value=60 * 60).map(lambda m: timedelta(minutes=m))
)
def test_the_due_time_is_when_exactly_the_target_has_counted_and_never_inside_a_pause(
    calendar: Calendar, timeline: Timeline, target: timedelta
) -> None:
    due = deadline(calendar, timeline, target)
    if due is None:
        # Only an open pause stops the clock short of the target.
        assert timeline.paused
        assert counted(calendar, timeline, timeline.pauses[-1][0]) < target
        return
    assert counted(calendar, timeline, due) == target
    assert all(not (start < due <= (end or due)) or due == start for start, end in timeline.pauses)
    # Taking the pauses away can only bring the due time forward.
    unpaused = deadline(calendar, Timeline(timeline.started_at), target)
    assert unpaused is not None and unpaused <= due


@settings(max_examples=100, deadline=None)
@given(calendars, timelines(), st.integers(min_value=1, max_value=3000), moments)
def test_the_warning_comes_at_the_share_and_before_the_due_time(
    calendar: Calendar, timeline: Timeline, minutes: int, now: datetime
) -> None:
    target = timedelta(minutes=minutes)
    reading = read(calendar, timeline, target, warning_share=0.75)
    if reading.due_at is not None:
        assert reading.warn_at is not None and reading.warn_at <= reading.due_at
        assert counted(calendar, timeline, reading.warn_at) == target * 0.75
    share = used_share(calendar, timeline, target, now)
    assert share >= 0
    if reading.due_at is not None and now >= reading.due_at:
        assert share >= 1


@settings(max_examples=100, deadline=None)
@given(
    calendars,
    moments,
    moments,
    timelines(),
    st.lists(st.integers(min_value=-5, max_value=3000).map(lambda m: timedelta(minutes=m)), max_size=4),
)
def test_a_calendar_reads_its_kept_days_as_it_would_afresh_and_one_walk_finds_every_target(
    calendar: Calendar, first: datetime, second: datetime, timeline: Timeline, targets: list[timedelta]
) -> None:
    # The calendar has kept the days of one reading; a copy of it has kept none.
    list(calendar.open_spans(min(first, second), max(first, second)))
    afresh = dataclasses.replace(calendar)
    assert list(calendar.open_spans(first, second + timedelta(days=9))) == list(
        afresh.open_spans(first, second + timedelta(days=9))
    )
    assert deadlines(calendar, timeline, targets) == [
        deadline(dataclasses.replace(calendar), timeline, target) for target in targets
    ]


def test_a_calendar_that_has_kept_its_most_days_starts_again_and_reads_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("services.complaints.sla._DAYS_KEPT", 3)
    calendar = weekdays(((540, 1080),), time_zone="Europe/Berlin")
    start, end = datetime(2026, 3, 20, tzinfo=UTC), datetime(2026, 4, 10, tzinfo=UTC)
    spans = list(calendar.open_spans(start, end))
    assert len(spans) == 15  # three weeks of weekdays, across the change to summer time
    assert spans == list(dataclasses.replace(calendar).open_spans(start, end))
    assert spans[0] == (datetime(2026, 3, 20, 8, tzinfo=UTC), datetime(2026, 3, 20, 17, tzinfo=UTC))
    assert spans[-1] == (datetime(2026, 4, 9, 7, tzinfo=UTC), datetime(2026, 4, 9, 16, tzinfo=UTC))
