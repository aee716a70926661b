"""Events the complaints service publishes on ``csm.complaints``."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from shared.events.base import Event
from shared.events.customer import CurrencyCode, Money
from shared.events.segmentation import Tier

TOPIC = "csm.complaints"
# Other systems produce complaint.submitted here; the complaints service consumes it.
INTAKE_TOPIC = "csm.complaints.intake"


class ComplaintChannel(StrEnum):
    phone = "phone"
    web = "web"
    email = "email"
    chat = "chat"
    in_person = "in_person"
    app = "app"
    system = "system"


class ComplaintCategory(StrEnum):
    product_quality = "product_quality"
    delivery = "delivery"
    billing = "billing"
    staff_attitude = "staff_attitude"
    installation_after_sales = "installation_after_sales"
    other = "other"


class Severity(StrEnum):
    low = "low"
    normal = "normal"
    high = "high"
    critical = "critical"


class SlaTarget(StrEnum):
    first_response = "first_response"
    on_site = "on_site"
    resolution = "resolution"


class ComplaintOpened(Event):
    type: ClassVar[str] = "csm.complaint.opened.v1"
    topic: ClassVar[str] = TOPIC

    complaint_id: uuid.UUID
    channel: ComplaintChannel
    category: ComplaintCategory
    severity: Severity
    first_owner: str
    tier: Tier | None
    first_response_due_at: AwareDatetime | None = None
    resolution_due_at: AwareDatetime | None = None
    opened_at: AwareDatetime


class ComplaintStatusChanged(Event):
    type: ClassVar[str] = "csm.complaint.status_changed.v1"
    topic: ClassVar[str] = TOPIC

    complaint_id: uuid.UUID
    previous_status: str
    status: str
    actor: str
    changed_at: AwareDatetime


class ComplaintResolved(Event):
    type: ClassVar[str] = "csm.complaint.resolved.v1"
    topic: ClassVar[str] = TOPIC

    complaint_id: uuid.UUID
    category: ComplaintCategory
    severity: Severity
    tier: Tier | None
    first_owner: str
    root_cause: str | None = None
    # The published schema says ``"default": 0`` (a number); Decimal("0") would make it a string.
    compensation: Money = Field(default=0)  # type: ignore[assignment]
    currency: CurrencyCode
    first_contact_resolution: bool
    within_sla: bool
    resolved_at: AwareDatetime


class ComplaintReopened(Event):
    type: ClassVar[str] = "csm.complaint.reopened.v1"
    topic: ClassVar[str] = TOPIC
    personal: ClassVar[tuple[str, ...]] = ("reason",)

    complaint_id: uuid.UUID
    reason: str
    reopened_at: AwareDatetime


class SlaWarning(Event):
    type: ClassVar[str] = "csm.complaint.sla_warning.v1"
    topic: ClassVar[str] = TOPIC

    complaint_id: uuid.UUID
    target: SlaTarget
    due_at: AwareDatetime
    used_share: float = Field(ge=0)
    tier: Tier | None
    first_owner: str


class SlaBreached(Event):
    type: ClassVar[str] = "csm.complaint.sla_breached.v1"
    topic: ClassVar[str] = TOPIC

    complaint_id: uuid.UUID
    target: SlaTarget
    due_at: AwareDatetime
    tier: Tier | None
    first_owner: str
    breached_at: AwareDatetime


class ComplaintEscalated(Event):
    type: ClassVar[str] = "csm.complaint.escalated.v1"
    topic: ClassVar[str] = TOPIC
    personal: ClassVar[tuple[str, ...]] = ("reason",)

    complaint_id: uuid.UUID
    level: int = Field(ge=0)
    level_name: str
    must_act: str
    reason: str
    escalated_at: AwareDatetime
    # Who owns the complaint whoever must act now, and the promise that was broken, if one was.
    first_owner: str | None = None
    tier: Tier | None = None
    target: SlaTarget | None = None


class SurveyAnswered(Event):
    type: ClassVar[str] = "csm.complaint.survey_answered.v1"
    topic: ClassVar[str] = TOPIC

    complaint_id: uuid.UUID
    csat: int = Field(ge=1, le=5)
    nps: int | None = Field(default=None, ge=0, le=10)
    poor: bool
    answered_at: AwareDatetime


class ComplaintRetargeted(Event):
    """The promise of an open complaint changed: the customer's tier arrived or changed, or its severity did.

    The due times are the new ones, counted from the opening (or the last reopen); None while the
    clock is paused waiting on the customer.
    """

    type: ClassVar[str] = "csm.complaint.retargeted.v1"
    topic: ClassVar[str] = TOPIC

    complaint_id: uuid.UUID
    previous_tier: Tier | None
    tier: Tier | None
    severity: Severity
    reason: str
    first_response_due_at: AwareDatetime | None = None
    resolution_due_at: AwareDatetime | None = None
    retargeted_at: AwareDatetime


# Where attachments may be kept: web servers and object stores.
ATTACHMENT_SCHEMES = frozenset({"http", "https", "s3", "gs"})


class AttachmentRef(BaseModel):
    """A file kept elsewhere that belongs to a complaint: csm stores the reference, never the file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    uri: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    name: Annotated[str, StringConstraints(max_length=200)] | None = None
    media_type: Annotated[str, StringConstraints(max_length=100)] | None = None

    @field_validator("uri")
    @classmethod
    def _a_place_to_fetch_from(cls, uri: str) -> str:
        # Never javascript:, data: or file: — whoever opens the reference would run or read it.
        scheme, _, rest = uri.partition("://")
        if scheme.lower() not in ATTACHMENT_SCHEMES or not rest.strip():
            raise ValueError(f"must be a {', '.join(sorted(ATTACHMENT_SCHEMES))} URL")
        return uri


class ComplaintSubmitted(Event):
    """Another system (a web form, the call-centre platform, a shop) hands over a complaint it received.

    ``submission_id`` becomes the complaint's id, so submitting the same complaint again changes
    nothing. ``received_by`` names the staff member who took it, who becomes its first owner;
    without one, the submitting system (the envelope's source) is.
    """

    type: ClassVar[str] = "csm.complaint.submitted.v1"
    topic: ClassVar[str] = INTAKE_TOPIC

    submission_id: uuid.UUID
    channel: ComplaintChannel
    category: ComplaintCategory
    severity: Severity = Severity.normal
    description: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=10_000)]
    desired_outcome: Annotated[str, StringConstraints(max_length=2_000)] | None = None
    attachments: tuple[AttachmentRef, ...] = Field(default=(), max_length=20)
    visit_required: bool = False
    received_by: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    submitted_at: AwareDatetime


class ReplyThread(BaseModel):
    """The e-mail threading of a reply: its own Message-ID and those it answers (RFC 5322 3.6.4)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    message_id: Annotated[str, StringConstraints(min_length=3, max_length=998)]
    in_reply_to: Annotated[str, StringConstraints(max_length=998)] | None = None
    references: tuple[Annotated[str, StringConstraints(max_length=998)], ...] = Field(
        default=(), max_length=20
    )


class ComplaintReplied(Event):
    """An agent answered the customer on a complaint's conversation; notify sends it on the customer's
    channel, threaded so that the customer's mail client keeps one thread."""

    type: ClassVar[str] = "csm.complaint.replied.v1"
    topic: ClassVar[str] = TOPIC
    personal: ClassVar[tuple[str, ...]] = ("subject", "body")

    complaint_id: uuid.UUID
    reply_id: uuid.UUID
    channel: ComplaintChannel
    subject: str
    body: str
    thread: ReplyThread
    replied_by: str
    replied_at: AwareDatetime


class SenderIntroduced(Event):
    """Mail came from an address no customer has, and the policy makes such senders customers.

    ``customer_id`` is the new customer's id, chosen by complaints (whose complaint already names
    it); the customer service registers the customer under it.
    """

    type: ClassVar[str] = "csm.complaint.sender_introduced.v1"
    topic: ClassVar[str] = TOPIC
    personal: ClassVar[tuple[str, ...]] = ("name", "email")

    name: str
    email: str
    introduced_at: AwareDatetime


EVENTS: tuple[type[Event], ...] = (
    ComplaintOpened,
    ComplaintStatusChanged,
    ComplaintResolved,
    ComplaintReopened,
    SlaWarning,
    SlaBreached,
    ComplaintEscalated,
    SurveyAnswered,
    ComplaintSubmitted,
    ComplaintRetargeted,
    ComplaintReplied,
    SenderIntroduced,
)
