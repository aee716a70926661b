"""Who can take work now: hours in each person's own time zone, capacity, skills, languages, ties. Pure."""

from __future__ import annotations

from datetime import UTC, datetime

from services.complaints.staffing import Candidate, least_loaded, on_duty

WEEKDAYS_9_TO_6 = {day: ["09:00-18:00"] for day in ("mon", "tue", "wed", "thu", "fri")}
# Tuesday 24 November 2026, 02:00 UTC: 10:00 in Shanghai, 02:00 in London, Monday 21:00 in New York.
TUESDAY_2_UTC = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


def test_hours_are_read_in_the_persons_own_time_zone() -> None:
    assert on_duty(WEEKDAYS_9_TO_6, "Asia/Shanghai", TUESDAY_2_UTC)
    assert not on_duty(WEEKDAYS_9_TO_6, "Europe/London", TUESDAY_2_UTC)
    assert not on_duty(WEEKDAYS_9_TO_6, "America/New_York", TUESDAY_2_UTC)
    # The weekday is the local one: Monday evening in New York is inside Monday's late shift.
    assert on_duty({"mon": ["20:00-24:00"]}, "America/New_York", TUESDAY_2_UTC)
    assert not on_duty({"tue": ["20:00-24:00"]}, "America/New_York", TUESDAY_2_UTC)


def test_the_closing_minute_is_off_duty_and_no_hours_recorded_means_any_time() -> None:
    closing = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)  # 18:00 in Shanghai
    assert not on_duty(WEEKDAYS_9_TO_6, "Asia/Shanghai", closing)
    assert on_duty(WEEKDAYS_9_TO_6, "Asia/Shanghai", closing.replace(hour=9, minute=59))  # 17:59
    assert on_duty({}, "Asia/Shanghai", closing)
    assert on_duty({"mon": []}, "Asia/Shanghai", closing)


def test_the_lowest_share_of_capacity_in_use_wins_then_fewer_open_then_the_subject() -> None:
    people = [
        Candidate("ann", load=2, capacity=10, on_duty=True),  # 20 %
        Candidate("bob", load=1, capacity=2, on_duty=True),  # 50 %
        Candidate("cai", load=0, capacity=5, on_duty=False),  # free but off duty
        Candidate("dan", load=3, capacity=3, on_duty=True),  # full
    ]
    assert least_loaded(people) == "ann"
    assert least_loaded([Candidate("zoe", 1, 5, True), Candidate("yan", 2, 10, True)]) == "zoe"
    assert least_loaded([Candidate("zoe", 1, 5, True), Candidate("yan", 1, 5, True)]) == "yan"


def test_nobody_when_all_are_full_off_duty_or_have_no_capacity() -> None:
    assert least_loaded([]) is None
    assert least_loaded([Candidate("dan", 3, 3, True), Candidate("cai", 0, 5, False)]) is None
    assert least_loaded([Candidate("eve", 0, 0, True)]) is None


def test_skill_and_language_must_match_on_the_primary_language_tag() -> None:
    billing_en = Candidate("ann", 0, 5, True, skills=frozenset({"billing"}), languages=frozenset({"en"}))
    delivery_zh = Candidate("bob", 3, 5, True, skills=frozenset({"delivery"}), languages=frozenset({"zh-CN"}))
    assert least_loaded([billing_en, delivery_zh], skill="delivery") == "bob"
    assert least_loaded([billing_en, delivery_zh], language="zh-TW") == "bob"
    assert least_loaded([billing_en, delivery_zh], language="EN-gb") == "ann"
    assert least_loaded([billing_en, delivery_zh], skill="billing", language="zh") is None
