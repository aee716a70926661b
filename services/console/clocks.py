"""How an SLA clock reads on a screen, and which complaints come first: plain values in, plain values out.

The complaints service keeps the clocks; the console only says what they mean now: met, breached,
paused (no due time while the complaint waits on the customer), warning (past the warning time) or
running, with the seconds left.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import Any


class ClockState(IntEnum):
    """In the order a person should look at them: the most urgent first."""

    breached = 0
    warning = 1
    running = 2
    paused = 3
    met = 4


@dataclass(frozen=True)
class ClockReading:
    target: str
    state: ClockState
    due_at: datetime | None
    seconds_left: int | None


def _moment(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def read_clock(clock: Mapping[str, Any], *, now: datetime) -> ClockReading:
    """What one promise (a ``ClockRead`` of the complaints API) says at ``now``."""
    due_at = _moment(clock.get("due_at"))
    left = None if due_at is None else int((due_at - now).total_seconds())
    warn_at = _moment(clock.get("warn_at"))
    if clock.get("met_at") is not None:
        state = ClockState.met
    elif clock.get("breached_at") is not None or (due_at is not None and due_at <= now):
        state = ClockState.breached
    elif due_at is None:
        state = ClockState.paused
    elif clock.get("warned_at") is not None or (warn_at is not None and warn_at <= now):
        state = ClockState.warning
    else:
        state = ClockState.running
    return ClockReading(target=str(clock.get("target")), state=state, due_at=due_at, seconds_left=left)


def urgency(readings: Sequence[ClockReading]) -> tuple[int, float]:
    """A sort key for a complaint: its worst clock first, then the soonest due time."""
    if not readings:
        return (len(ClockState), float("inf"))
    worst = min(reading.state for reading in readings)
    lefts = [r.seconds_left for r in readings if r.state == worst and r.seconds_left is not None]
    return (int(worst), float(min(lefts)) if lefts else float("inf"))
