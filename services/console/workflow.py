"""Which buttons a complaint's page offers in each status: a hint for the screen, plain values only.

The complaints service decides (and says why it refuses); this map only spares a person buttons that
cannot apply. ``tests/console/test_workflow.py`` holds it to the service's own workflow.
"""

from __future__ import annotations

# Status -> the statuses a person can move it to from the page.
NEXT: dict[str, tuple[str, ...]] = {
    "new": ("acknowledged", "resolved"),
    "acknowledged": ("in_progress", "resolved"),
    "in_progress": ("waiting_on_customer", "resolved"),
    "waiting_on_customer": ("in_progress",),
    "resolved": ("closed", "reopened"),
    "closed": ("reopened",),
    "reopened": ("acknowledged", "resolved"),
}

# Moves with their own form: resolving names a summary and a root cause, reopening a reason.
WITH_THEIR_OWN_FORM = frozenset({"resolved", "reopened"})

OPEN = frozenset({"new", "acknowledged", "in_progress", "waiting_on_customer", "reopened"})


def simple_moves(status: str) -> tuple[str, ...]:
    """The moves a single button makes (acknowledge, start, wait on the customer, close)."""
    return tuple(move for move in NEXT.get(status, ()) if move not in WITH_THEIR_OWN_FORM)


def may_resolve(status: str) -> bool:
    return "resolved" in NEXT.get(status, ())


def may_reopen(status: str) -> bool:
    return "reopened" in NEXT.get(status, ())
