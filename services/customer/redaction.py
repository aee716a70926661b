"""What of an event is personal, and the same event with that removed (pure).

An erased customer's events stay in the outbox for a while (so that a broker which lost its log
can be refilled); erasure rewrites them with this, so the outbox keeps no personal data either.
"""

from __future__ import annotations

from typing import Any

from shared.events.customer import CustomerProfile, CustomerStatus

ERASED_NAME = "(erased)"


def anonymous_profile(profile: CustomerProfile) -> CustomerProfile:
    """The profile with nothing left that points to the person: only kind and status remain."""
    return CustomerProfile(kind=profile.kind, name=ERASED_NAME, status=CustomerStatus.erased)


def redact(event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    """An event payload (as JSON-ready data) without the erased person's personal data."""
    redacted = dict(data)
    if "profile" in redacted:
        redacted["profile"] = anonymous_profile(
            CustomerProfile.model_validate(redacted["profile"])
        ).model_dump(mode="json")
    if event_type == "csm.interaction.logged.v1":
        redacted["outcome"] = None
    if event_type == "csm.customer.interests_changed.v1":
        redacted["interests"] = []
    if event_type == "csm.customer.consent_changed.v1":
        redacted["source"] = "erased"
    return redacted
