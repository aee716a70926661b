"""The complaint workflow: which status may follow which. Pure."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    new = "new"
    acknowledged = "acknowledged"
    in_progress = "in_progress"
    waiting_on_customer = "waiting_on_customer"
    resolved = "resolved"
    closed = "closed"
    reopened = "reopened"


# new -> acknowledged -> in progress -> waiting on customer <-> in progress -> resolved -> closed,
# with reopen. Resolving straight from new or acknowledged is first-contact resolution, which
# the practice wants to be the common case; a reopened complaint starts over like a new one.
TRANSITIONS: dict[Status, tuple[Status, ...]] = {
    Status.new: (Status.acknowledged, Status.resolved),
    Status.acknowledged: (Status.in_progress, Status.resolved),
    Status.in_progress: (Status.waiting_on_customer, Status.resolved),
    Status.waiting_on_customer: (Status.in_progress,),
    Status.resolved: (Status.closed, Status.reopened),
    Status.closed: (Status.reopened,),
    Status.reopened: (Status.acknowledged, Status.resolved),
}

# The clock stands still while the customer has the ball.
PAUSED: frozenset[Status] = frozenset({Status.waiting_on_customer})
# Statuses in which the complaint is still being worked on: its clocks run and it counts as open.
OPEN: frozenset[Status] = frozenset(
    {Status.new, Status.acknowledged, Status.in_progress, Status.waiting_on_customer, Status.reopened}
)
# Statuses that still await the first response of the current cycle.
AWAITING_RESPONSE: frozenset[Status] = frozenset({Status.new, Status.reopened})


class IllegalTransition(ValueError):
    def __init__(self, current: Status, wanted: Status) -> None:
        allowed = TRANSITIONS[current]
        options = ", ".join(status.value for status in allowed) if allowed else "none"
        super().__init__(
            f"A complaint that is {current.value} cannot become {wanted.value}; "
            f"from {current.value} it may become: "
            f"{options}."
        )
        self.current = current
        self.wanted = wanted
        self.allowed = allowed


def check(current: Status, wanted: Status) -> None:
    """Raise IllegalTransition, naming what is allowed, unless ``current`` may become ``wanted``."""
    if wanted not in TRANSITIONS[current]:
        raise IllegalTransition(current, wanted)


def is_open(status: Status) -> bool:
    return status in OPEN
