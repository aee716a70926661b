"""Events the complaints service publishes on ``csm.complaints``."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import ClassVar

from pydantic import AwareDatetime, Field

from shared.events.customer import CurrencyCode, Money
from shared.events.base import Event
from shared.events.segmentation import Tier

TOPIC = "csm.complaints"


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
    compensation: Money = Field(default=0)
    currency: CurrencyCode
    first_contact_resolution: bool
    within_sla: bool
    resolved_at: AwareDatetime


class ComplaintReopened(Event):
    type: ClassVar[str] = "csm.complaint.reopened.v1"
    topic: ClassVar[str] = TOPIC

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

    complaint_id: uuid.UUID
    level: int = Field(ge=0)
    level_name: str
    must_act: str
    reason: str
    escalated_at: AwareDatetime


class SurveyAnswered(Event):
    type: ClassVar[str] = "csm.complaint.survey_answered.v1"
    topic: ClassVar[str] = TOPIC

    complaint_id: uuid.UUID
    csat: int = Field(ge=1, le=5)
    nps: int | None = Field(default=None, ge=0, le=10)
    poor: bool
    answered_at: AwareDatetime


EVENTS: tuple[type[Event], ...] = (
    ComplaintOpened,
    ComplaintStatusChanged,
    ComplaintResolved,
    ComplaintReopened,
    SlaWarning,
    SlaBreached,
    ComplaintEscalated,
    SurveyAnswered,
)
