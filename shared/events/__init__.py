"""The event catalog: one versioned Pydantic model per event type, grouped by the topic it travels on.

Producers and consumers import the same models; ``tests/shared/test_event_contracts.py`` pins
their JSON. A breaking change to a payload is a new type with the next version suffix.
"""

from __future__ import annotations

from shared.events import complaints, customer, notify, segmentation
from shared.events.base import CONTENT_TYPE, Envelope, Event, InvalidEvent, decode, encode, envelope_for

ALL_EVENTS: tuple[type[Event], ...] = (
    *customer.EVENTS,
    *segmentation.EVENTS,
    *complaints.EVENTS,
    *notify.EVENTS,
)

REGISTRY: dict[str, type[Event]] = {event.type: event for event in ALL_EVENTS}

# Each service publishes on one topic, so one customer's events from it stay in order.
TOPICS: dict[str, str] = {
    "customer": customer.TOPIC,
    "segmentation": segmentation.TOPIC,
    "complaints": complaints.TOPIC,
    # Not a service: the topic other systems hand complaints to csm on (complaint.submitted).
    "complaints_intake": complaints.INTAKE_TOPIC,
    "notify": notify.TOPIC,
}

# The first record of this topic identifies the broker's log; see shared.bus.
EPOCH_TOPIC = "csm.epoch"


def dead_letter_topic(consumer: str) -> str:
    return f"csm.dlq.{consumer}"


__all__ = [
    "ALL_EVENTS",
    "CONTENT_TYPE",
    "EPOCH_TOPIC",
    "REGISTRY",
    "TOPICS",
    "Envelope",
    "Event",
    "InvalidEvent",
    "dead_letter_topic",
    "decode",
    "encode",
    "envelope_for",
]
