"""Events the notify service publishes on ``csm.notify``."""

from __future__ import annotations

import uuid
from typing import ClassVar

from pydantic import AwareDatetime, Field

from shared.events.base import Event
from shared.events.customer import ContactChannel, Purpose

TOPIC = "csm.notify"


class NotificationSent(Event):
    type: ClassVar[str] = "csm.notification.sent.v1"
    topic: ClassVar[str] = TOPIC

    notification_id: uuid.UUID
    channel: ContactChannel
    purpose: Purpose
    playbook: str
    step: str
    cause_event_id: uuid.UUID | None = None
    sent_at: AwareDatetime


class NotificationFailed(Event):
    type: ClassVar[str] = "csm.notification.failed.v1"
    topic: ClassVar[str] = TOPIC
    # A provider's refusal may quote the address it refused.
    personal: ClassVar[tuple[str, ...]] = ("reason",)

    notification_id: uuid.UUID
    channel: ContactChannel
    purpose: Purpose
    playbook: str
    step: str
    reason: str
    attempts: int = Field(ge=1)
    failed_at: AwareDatetime


class TaskCreated(Event):
    """A person must act for this customer: a care call, a visit, a review."""

    type: ClassVar[str] = "csm.task.created.v1"
    topic: ClassVar[str] = TOPIC

    task_id: uuid.UUID
    kind: str
    playbook: str
    assignee: str | None = None
    assignee_role: str | None = None
    due_at: AwareDatetime
    cause_event_id: uuid.UUID | None = None


EVENTS: tuple[type[Event], ...] = (NotificationSent, NotificationFailed, TaskCreated)
