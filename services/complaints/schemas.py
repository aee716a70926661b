"""Request and response models of the complaints API."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from services.complaints.policy import ComplaintPolicy
from services.complaints.routing import LanguageTag
from services.complaints.workflow import Status
from shared.clock import UtcDatetime
from shared.events.complaints import AttachmentRef, ComplaintCategory, ComplaintChannel, Severity, SlaTarget
from shared.events.customer import CurrencyCode
from shared.events.segmentation import Tier

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=10_000)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2_000)]
StaffId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
PositiveAmount = Annotated[Decimal, Field(gt=0, max_digits=14, decimal_places=2)]


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ComplaintCreate(Input):
    customer_id: uuid.UUID
    channel: ComplaintChannel
    category: ComplaintCategory
    severity: Severity = Severity.normal
    # The customer's language, e.g. zh-CN or en, for routing to someone who speaks it.
    language: LanguageTag | None = None
    description: Text
    desired_outcome: Reason | None = None
    attachments: list[AttachmentRef] = Field(default_factory=list, max_length=20)
    visit_required: bool = False
    # Only systems may name the staff member who received the complaint; staff own what they take.
    received_by: StaffId | None = None


class ComplaintUpdate(Input):
    severity: Severity | None = None
    category: ComplaintCategory | None = None
    visit_required: bool | None = None
    desired_outcome: Reason | None = None

    @model_validator(mode="after")
    def _something(self) -> ComplaintUpdate:
        if not self.model_fields_set:
            raise ValueError("name at least one of severity, category, visit_required, desired_outcome")
        return self


class ClockRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    target: SlaTarget
    calendar: str
    target_seconds: int
    due_at: datetime | None
    warn_at: datetime | None
    warned_at: datetime | None
    breached_at: datetime | None
    met_at: datetime | None


class ComplaintRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    customer_id: uuid.UUID
    channel: ComplaintChannel
    language: str | None = None
    category: ComplaintCategory
    severity: Severity
    description: str
    desired_outcome: str | None
    attachments: list[AttachmentRef]
    status: Status
    first_owner: str
    assignee: str | None
    source: str
    opened_at: datetime
    tier: Tier | None
    key_account: bool
    policy_version: int
    cycle: int
    visit_required: bool
    visited_at: datetime | None
    first_response_at: datetime | None
    escalation_level: int
    resolved_at: datetime | None
    closed_at: datetime | None
    resolution_summary: str | None
    root_cause: str | None
    first_contact_resolution: bool | None
    within_sla: bool | None
    compensation: Decimal
    currency: str
    reopen_count: int
    clocks: list[ClockRead] = Field(description="The promises of the current cycle.")
    created_at: datetime
    updated_at: datetime


class TransitionCreate(Input):
    # Resolving and reopening carry more than a reason: they have their own endpoints.
    to: Literal[Status.acknowledged, Status.in_progress, Status.waiting_on_customer, Status.closed]
    reason: Reason | None = None


class TransitionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    step: int
    cycle: int
    from_status: Status | None
    to_status: Status
    actor: str
    reason: str | None
    at: datetime


class AssignmentCreate(Input):
    assignee: StaffId
    reason: Reason | None = None


class VisitCreate(Input):
    visited_at: UtcDatetime | None = Field(
        default=None, description="When the visit took place; now if left out."
    )


class EscalationCreate(Input):
    reason: Reason


class EscalationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    level: int
    level_name: str
    must_act: str
    reason: str
    actor: str
    at: datetime


class ResolutionCreate(Input):
    summary: Text
    root_cause: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]
    first_contact_resolution: bool | None = Field(
        default=None,
        description="Solved at first contact; left out, it is true when the first owner resolves it without "
        "escalation, waiting on the customer or a reopen.",
    )


class ReopenCreate(Input):
    reason: Reason


class CompensationCreate(Input):
    amount: PositiveAmount
    currency: CurrencyCode
    reason: Reason


class CompensationDecision(Input):
    approve: bool
    reason: Reason | None = None


class CompensationRead(BaseModel):
    id: uuid.UUID
    complaint_id: uuid.UUID
    amount: Decimal
    currency: str
    reason: str
    status: Literal["granted", "pending", "rejected"]
    requested_by: str
    requested_role: str
    requested_at: datetime
    requires_role: str | None
    decided_by: str | None
    decided_at: datetime | None


class SurveyCreate(Input):
    csat: int = Field(ge=1, le=5)
    nps: int | None = Field(default=None, ge=0, le=10)
    comment: Reason | None = None


class SurveyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    complaint_id: uuid.UUID
    cycle: int
    csat: int
    nps: int | None
    comment: str | None
    poor: bool
    answered_at: datetime


class PolicyRead(BaseModel):
    version: int = Field(description="0 is the built-in default, in force until an operator stores one.")
    created_by: str | None
    created_at: datetime | None
    policy: ComplaintPolicy


class ReplyCreate(Input):
    """An agent's answer to the customer; the subject defaults to ``Re:`` the customer's last one."""

    body: Text
    subject: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)] | None = (
        None
    )


class NoteCreate(Input):
    body: Text


class MailAttachmentRead(BaseModel):
    """A file that came with a mail: its address, or why it was not kept (``refused``)."""

    uri: str | None = None
    name: str | None = None
    media_type: str | None = None
    size: int | None = None
    refused: str | None = None


class ConversationMessageRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    complaint_id: uuid.UUID | None
    kind: Literal["customer", "reply", "note"]
    sender: str | None
    subject: str | None
    body: str
    attachments: list[MailAttachmentRead]
    message_id: str | None
    in_reply_to: str | None
    references: list[str]
    triage: str | None
    at: datetime


class TriagePlacement(Input):
    """Whose a mail from an unknown address is: it opens a complaint of that customer's."""

    customer_id: uuid.UUID
