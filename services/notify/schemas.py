"""Request and response models of the notify API (the playbook and policy documents are in
``playbooks.py`` and ``policy.py``)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator, model_validator

from services.notify.playbooks import PlaybookDefinition
from services.notify.policy import Policy
from shared.clock import LocalTime
from shared.events.customer import ContactChannel, Purpose

_INPUT = ConfigDict(extra="forbid")
_READ = ConfigDict(from_attributes=True)

CustomerChannel = Literal[ContactChannel.email, ContactChannel.sms, ContactChannel.in_app]


class NotificationRead(BaseModel):
    model_config = _READ

    id: uuid.UUID
    customer_id: uuid.UUID
    playbook: str
    playbook_version: int
    step: str
    channel: ContactChannel
    purpose: Purpose
    title: str
    body: str
    status: str = Field(description="pending, sending, sent, failed or suppressed")
    urgent: bool
    language: str
    webhook: str | None
    attempts: int
    last_error: str | None = Field(description="Why it failed, was retried or was suppressed.")
    cause_event_id: uuid.UUID | None
    announcement_id: uuid.UUID | None
    created_at: datetime
    due_at: datetime
    sent_at: datetime | None
    failed_at: datetime | None
    read_at: datetime | None


class ChannelChoice(BaseModel):
    model_config = _INPUT

    service: bool = True
    marketing: bool = True


class QuietHoursChoice(BaseModel):
    model_config = _INPUT

    start: LocalTime
    end: LocalTime

    @model_validator(mode="after")
    def _a_window(self) -> QuietHoursChoice:
        if self.start == self.end:
            raise ValueError("start and end are the same: that is no window")
        return self


class PreferencesUpdate(BaseModel):
    """The customer's choices: which channels for which purpose, and quiet hours of their own."""

    model_config = _INPUT

    channels: dict[CustomerChannel, ChannelChoice] = Field(default_factory=dict)
    quiet_hours: QuietHoursChoice | None = None


class ConsentRead(BaseModel):
    model_config = _READ

    channel: ContactChannel
    purpose: Purpose
    granted: bool
    changed_at: datetime


class PreferencesRead(BaseModel):
    customer_id: uuid.UUID
    channels: dict[str, ChannelChoice]
    quiet_hours: QuietHoursChoice | None = Field(description="The customer's own; null means the policy's.")
    consents: list[ConsentRead] = Field(description="As recorded by the customer service; read-only here.")


class PlaybookRead(BaseModel):
    key: str
    version: int = Field(description="0 is the shipped default.")
    created_by: str
    created_at: datetime | None
    definition: PlaybookDefinition


class EventSample(BaseModel):
    """An event as it would arrive: its type and payload (customer_id included)."""

    model_config = _INPUT

    type: str
    data: dict[str, Any]
    id: uuid.UUID | None = None


class DryRunRequest(BaseModel):
    """Either an event (every playbook it would start), or a calendar period or announcement for a
    customer; optionally against a draft playbook instead of those in force."""

    model_config = _INPUT

    event: EventSample | None = None
    customer_id: uuid.UUID | None = Field(
        default=None, description="For calendar and announcement playbooks."
    )
    announcement_topic: str | None = Field(default=None, max_length=100)
    playbook_key: str | None = Field(default=None, description="Only this playbook (in force, or the draft).")
    draft: PlaybookDefinition | None = None
    at: datetime | None = Field(default=None, description="When it would happen; now if not given.")

    @model_validator(mode="after")
    def _something_to_run(self) -> DryRunRequest:
        if self.event is None and self.customer_id is None:
            raise ValueError("give an event, or a customer_id for a calendar or announcement playbook")
        if self.draft is not None and self.playbook_key is None:
            raise ValueError("a draft needs a playbook_key to stand for")
        return self


class PlannedAction(BaseModel):
    step: str
    kind: str
    at: datetime
    purpose: Purpose | None = None
    channel: ContactChannel | None = Field(
        default=None, description="The channel it would take, as things are now."
    )
    blocked: str | None = Field(default=None, description="Why it would not go, as things are now.")
    title: str | None = None
    body: str | None = None
    assignee: str | None = None
    assignee_role: str | None = None


class PlaybookOutcome(BaseModel):
    playbook: str
    version: int
    starts: bool
    reason: str | None = None
    actions: list[PlannedAction] = Field(default_factory=list)
    skipped_steps: list[str] = Field(default_factory=list)
    stops_at: str | None = None


class DryRunRead(BaseModel):
    customer_id: uuid.UUID
    playbooks: list[PlaybookOutcome]


class PolicyRead(BaseModel):
    version: int = Field(description="0 is the shipped default.")
    created_by: str
    created_at: datetime | None
    policy: Policy


class TaskRead(BaseModel):
    model_config = _READ

    id: uuid.UUID
    customer_id: uuid.UUID
    kind: str
    playbook: str
    step: str
    title: str
    detail: str | None
    purpose: Purpose
    assignee: str | None
    assignee_role: str
    status: str = Field(description="open, claimed or done")
    due_at: datetime
    claimed_by: str | None
    claimed_at: datetime | None
    completed_by: str | None
    completed_at: datetime | None
    outcome: str | None
    cause_event_id: uuid.UUID | None
    created_at: datetime


class TaskCompletion(BaseModel):
    model_config = _INPUT

    outcome: str = Field(min_length=1, max_length=4000, description="What was done and what came of it.")


class AnnouncementCreate(BaseModel):
    model_config = _INPUT

    topic: str = Field(min_length=1, max_length=100)
    title: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=4000)
    playbook: str = Field(default="interest_match", pattern=r"^[a-z][a-z0-9_]{0,59}$")

    @field_validator("topic", "title", "body")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value


class AnnouncementRead(BaseModel):
    model_config = _READ

    id: uuid.UUID
    topic: str
    title: str
    body: str
    playbook: str
    state: str = Field(description="matching, matched or stopped")
    matched: int = Field(description="Customers it started a playbook for so far.")
    skipped: int = Field(description="Interested customers no channel may reach (no consent, turned off).")
    created_by: str
    created_at: datetime
    matched_at: datetime | None


class WebhookWrite(BaseModel):
    model_config = _INPUT

    url: AnyHttpUrl
    enabled: bool = True
    rotate_secret: bool = Field(default=False, description="Issue a new signing secret (shown once).")


class WebhookRead(BaseModel):
    name: str
    url: str
    enabled: bool
    created_at: datetime
    updated_at: datetime
    secret: str | None = Field(
        default=None, description="The Standard Webhooks signing secret: only in the answer that issued it."
    )
