"""How the console reads an SLA clock and orders complaints: the most urgent first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.console.clocks import ClockReading, ClockState, read_clock, urgency

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def clock(**given: object) -> dict[str, object]:
    base: dict[str, object] = {
        "target": "resolution",
        "due_at": None,
        "warn_at": None,
        "warned_at": None,
        "breached_at": None,
        "met_at": None,
    }
    return {
        **base,
        **{key: value.isoformat() if isinstance(value, datetime) else value for key, value in given.items()},
    }


def test_a_clock_with_time_left_runs_and_says_how_long() -> None:
    reading = read_clock(clock(due_at=NOW + timedelta(hours=2), warn_at=NOW + timedelta(hours=1)), now=NOW)
    assert reading.state is ClockState.running
    assert reading.seconds_left == 7200


def test_past_the_warning_time_it_warns_even_before_the_scanner_noted_it() -> None:
    reading = read_clock(
        clock(due_at=NOW + timedelta(minutes=30), warn_at=NOW - timedelta(minutes=1)), now=NOW
    )
    assert reading.state is ClockState.warning


def test_past_the_due_time_it_is_breached_even_before_the_scanner_noted_it() -> None:
    reading = read_clock(clock(due_at=NOW - timedelta(seconds=1)), now=NOW)
    assert reading.state is ClockState.breached
    assert reading.seconds_left == -1


def test_a_clock_without_a_due_time_is_paused() -> None:
    assert read_clock(clock(), now=NOW).state is ClockState.paused


def test_a_met_promise_stays_met_after_its_due_time() -> None:
    reading = read_clock(clock(due_at=NOW - timedelta(hours=1), met_at=NOW - timedelta(hours=2)), now=NOW)
    assert reading.state is ClockState.met


def test_complaints_come_worst_clock_first_then_soonest_due() -> None:
    breached = [read_clock(clock(due_at=NOW - timedelta(hours=1)), now=NOW)]
    warning_late = [read_clock(clock(due_at=NOW + timedelta(hours=3), warned_at=NOW), now=NOW)]
    warning_soon = [
        read_clock(clock(due_at=NOW + timedelta(hours=1), warned_at=NOW), now=NOW),
        read_clock(clock(met_at=NOW), now=NOW),
    ]
    running = [read_clock(clock(due_at=NOW + timedelta(minutes=5)), now=NOW)]
    paused = [read_clock(clock(), now=NOW)]
    none: list[ClockReading] = []
    ordered = sorted([paused, running, warning_late, none, breached, warning_soon], key=urgency)
    assert ordered == [breached, warning_soon, warning_late, running, paused, none]
