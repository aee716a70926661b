"""The notify service's tables."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, Index, String, Table, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared import audit
from shared.db import TYPE_ANNOTATION_MAP, TimestampMixin, new_id, service_metadata


class Base(DeclarativeBase):
    metadata = service_metadata()
    type_annotation_map = TYPE_ANNOTATION_MAP
    # Every model here is mapped to a plain table (SQLAlchemy declares any FromClause).
    __table__: ClassVar[Table]


class Contact(TimestampMixin, Base):
    """Notify's projection of a customer: how to reach them and what they are, from events.

    ``known`` is false while only segment or complaint events have named the customer. An
    erased customer keeps a row with every personal field emptied, so nothing reaches them again.
    """

    __tablename__ = "contact"

    customer_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    known: Mapped[bool] = mapped_column(default=False)
    kind: Mapped[str | None] = mapped_column(String(20))
    name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(40))
    locale: Mapped[str | None] = mapped_column(String(35))
    time_zone: Mapped[str | None] = mapped_column(String(64))
    region: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str | None] = mapped_column(String(20))
    account_manager: Mapped[str | None] = mapped_column(String(200))
    tier: Mapped[str | None] = mapped_column(String(20))
    key_account: Mapped[bool] = mapped_column(default=False, index=True)
    segment: Mapped[str | None] = mapped_column(String(100))
    stage: Mapped[str | None] = mapped_column(String(30))
    risk: Mapped[str | None] = mapped_column(String(20))
    # Each projection moves forward only: an older event arriving late changes nothing.
    profile_at: Mapped[datetime | None]
    interests_at: Mapped[datetime | None]


class Interest(Base):
    """A topic a customer cares about (case-folded), for matching announcements."""

    __tablename__ = "interest"

    topic: Mapped[str] = mapped_column(String(100), primary_key=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(primary_key=True, index=True)


class Consent(Base):
    """The customer's consent for one channel and purpose, as the customer service last said."""

    __tablename__ = "consent"

    customer_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(20), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(20), primary_key=True)
    granted: Mapped[bool]
    changed_at: Mapped[datetime]


class Preference(TimestampMixin, Base):
    """What the customer chose in the app: channels per purpose, and quiet hours of their own."""

    __tablename__ = "preference"

    customer_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    # {"email": {"service": true, "marketing": false}, ...}; a channel or purpose left out is on.
    channels: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    quiet_start: Mapped[str | None] = mapped_column(String(5))
    quiet_end: Mapped[str | None] = mapped_column(String(5))


class ComplaintRef(TimestampMixin, Base):
    """The little notify keeps of a complaint: whose it is, who owns it, whether it is resolved."""

    __tablename__ = "complaint_ref"

    complaint_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(index=True)
    first_owner: Mapped[str | None] = mapped_column(String(200))
    category: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20))
    status_at: Mapped[datetime]


class PlaybookVersion(Base):
    """One saved version of a playbook; the highest version of a key is in force."""

    __tablename__ = "playbook_version"
    __table_args__ = (UniqueConstraint("key", "version"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    key: Mapped[str] = mapped_column(String(60))
    version: Mapped[int]
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]


class PolicyVersion(Base):
    """One saved version of the follow-up policy; the highest is in force."""

    __tablename__ = "policy_version"

    version: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]


class PlaybookRun(Base):
    """A playbook run waiting for its next step's due time (a delayed step)."""

    __tablename__ = "playbook_run"
    __table_args__ = (UniqueConstraint("run_key"), Index("ix_playbook_run_state_due", "state", "due_at"))

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    run_key: Mapped[str] = mapped_column(String(250))
    playbook: Mapped[str] = mapped_column(String(60))
    playbook_version: Mapped[int]
    customer_id: Mapped[uuid.UUID] = mapped_column(index=True)
    cause_event_id: Mapped[uuid.UUID | None]
    # The facts of the triggering event, for the steps still to come.
    facts: Mapped[dict[str, Any]] = mapped_column(JSON)
    context: Mapped[dict[str, Any]] = mapped_column(JSON)
    next_step: Mapped[int]
    due_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(20))
    outcome: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Notification(Base):
    """One message, to a customer or to a staff webhook. The idempotency key makes it unique.

    Lifecycle: pending (waiting for ``due_at``) -> sending (claimed until ``lease_until``) ->
    sent | pending again (a retry) | failed; or suppressed when it may not go at all.
    """

    __tablename__ = "notification"
    __table_args__ = (
        UniqueConstraint("idempotency_key"),
        Index("ix_notification_status_due", "status", "due_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    customer_id: Mapped[uuid.UUID] = mapped_column(index=True)
    idempotency_key: Mapped[str] = mapped_column(String(200))
    playbook: Mapped[str] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(20))
    purpose: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))
    cause_event_id: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    step: Mapped[str] = mapped_column(String(60), default="")
    playbook_version: Mapped[int] = mapped_column(default=0)
    # The channels to try, in order, when it is sent; ``channel`` is the one chosen.
    candidates: Mapped[list[str]] = mapped_column(JSON, default=list)
    webhook: Mapped[str | None] = mapped_column(String(63))
    sms_text: Mapped[str | None] = mapped_column(String(500))
    language: Mapped[str] = mapped_column(String(35), default="zh-CN")
    urgent: Mapped[bool] = mapped_column(default=False)
    announcement_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    due_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(default=0)
    lease_until: Mapped[datetime | None]
    claim: Mapped[uuid.UUID | None]
    destination: Mapped[str | None] = mapped_column(String(320))
    provider_reference: Mapped[str | None] = mapped_column(String(200))
    last_error: Mapped[str | None] = mapped_column(String(500))
    failed_at: Mapped[datetime | None]
    read_at: Mapped[datetime | None]
    # An agent's reply on a complaint: its Message-ID and the ones it answers (complaint.replied).
    thread: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    # The W3C traceparent of the span that made the message (shared.tracing); None when not traced.
    traceparent: Mapped[str | None] = mapped_column(String(55))


class Task(Base):
    """Work for a person about a customer: a care call, a visit, a review."""

    __tablename__ = "task"
    __table_args__ = (UniqueConstraint("idempotency_key"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    idempotency_key: Mapped[str] = mapped_column(String(200))
    customer_id: Mapped[uuid.UUID] = mapped_column(index=True)
    kind: Mapped[str] = mapped_column(String(60))
    playbook: Mapped[str] = mapped_column(String(60))
    step: Mapped[str] = mapped_column(String(60))
    title: Mapped[str] = mapped_column(String(300))
    detail: Mapped[str | None] = mapped_column(Text)
    purpose: Mapped[str] = mapped_column(String(20))
    assignee: Mapped[str | None] = mapped_column(String(200), index=True)
    assignee_role: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), index=True)
    due_at: Mapped[datetime] = mapped_column(index=True)
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claimed_at: Mapped[datetime | None]
    completed_by: Mapped[str | None] = mapped_column(String(200))
    completed_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(Text)
    cause_event_id: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime]


class Announcement(Base):
    """News on a topic, sent to each customer whose interests match; matched in batches."""

    __tablename__ = "announcement"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    topic: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    playbook: Mapped[str] = mapped_column(String(60))
    state: Mapped[str] = mapped_column(String(20), index=True)
    # Matching resumes after this customer id, so a restart neither skips nor repeats anyone.
    matched_through: Mapped[uuid.UUID | None]
    matched: Mapped[int] = mapped_column(default=0)
    # Interested, but no channel may carry it to them (no consent, turned off, no address).
    skipped: Mapped[int] = mapped_column(default=0)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    matched_at: Mapped[datetime | None]


class WebhookEndpoint(TimestampMixin, Base):
    """A staff system that receives signed alerts: a chat channel, a ticketing tool."""

    __tablename__ = "webhook_endpoint"
    __table_args__ = (UniqueConstraint("name"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(63))
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(200))
    enabled: Mapped[bool] = mapped_column(default=True)


class ScheduleMark(Base):
    """When a calendar playbook last looked for its audience, and for which period."""

    __tablename__ = "schedule_mark"

    playbook: Mapped[str] = mapped_column(String(60), primary_key=True)
    period: Mapped[str] = mapped_column(String(20))
    checked_at: Mapped[datetime]


# Who changed what and when, append-only (shared.audit).
audit_entry = audit.add_to(Base.metadata)
