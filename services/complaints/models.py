"""The complaints service's tables."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy import JSON, BigInteger, Index, LargeBinary, String, Table, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared import audit
from shared.db import TYPE_ANNOTATION_MAP, TimestampMixin, new_id, service_metadata
from shared.idempotency import idempotency_table


class Base(DeclarativeBase):
    metadata = service_metadata()
    type_annotation_map = TYPE_ANNOTATION_MAP
    # Every model here is mapped to a plain table (SQLAlchemy declares any FromClause).
    __table__: ClassVar[Table]


class Complaint(TimestampMixin, Base):
    __tablename__ = "complaint"
    __table_args__ = (
        # The deadline scanner reads only complaints with something due: open ones.
        Index(
            "ix_complaint_next_check_at",
            "next_check_at",
            postgresql_where=sa.text("next_check_at IS NOT NULL"),
            sqlite_where=sa.text("next_check_at IS NOT NULL"),
        ),
        Index("ix_complaint_opened_at", "opened_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    customer_id: Mapped[uuid.UUID] = mapped_column(index=True)
    channel: Mapped[str] = mapped_column(String(20))
    # The customer's language (a tag such as zh-CN), when the channel tells it; routing may use it.
    language: Mapped[str | None] = mapped_column(String(35), default=None)
    category: Mapped[str] = mapped_column(String(40))
    severity: Mapped[str] = mapped_column(String(20))
    description: Mapped[str] = mapped_column(Text)
    desired_outcome: Mapped[str | None] = mapped_column(Text, default=None)
    # References to files kept elsewhere ({"uri", "name", "media_type"}); never the files themselves.
    attachments: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(30))
    # How many transitions are recorded: the next one's step.
    steps: Mapped[int] = mapped_column(default=0)
    # Whoever received the complaint owns it until it is closed (首问负责), whoever works on it.
    first_owner: Mapped[str] = mapped_column(String(200), index=True)
    assignee: Mapped[str | None] = mapped_column(String(200), index=True, default=None)
    # Where it came from: "api", or the source of the intake event.
    source: Mapped[str] = mapped_column(String(200), default="api")
    opened_at: Mapped[datetime]

    # The promise: the tier and policy version it was made under, and the current cycle (reopens add one).
    tier: Mapped[str | None] = mapped_column(String(20), default=None)
    key_account: Mapped[bool] = mapped_column(default=False)
    policy_version: Mapped[int] = mapped_column(default=0)
    cycle: Mapped[int] = mapped_column(default=1)
    visit_required: Mapped[bool] = mapped_column(default=False)
    visited_at: Mapped[datetime | None] = mapped_column(default=None)
    first_response_at: Mapped[datetime | None] = mapped_column(default=None)
    escalation_level: Mapped[int] = mapped_column(default=0)
    escalation_due_at: Mapped[datetime | None] = mapped_column(default=None)
    # When the current escalation level was called: the next level's time counts from here.
    escalated_at: Mapped[datetime | None] = mapped_column(default=None)
    # The earliest warning, due time or escalation still ahead; None when nothing is pending.
    next_check_at: Mapped[datetime | None] = mapped_column(default=None)

    resolved_at: Mapped[datetime | None] = mapped_column(default=None)
    closed_at: Mapped[datetime | None] = mapped_column(default=None)
    resolution_summary: Mapped[str | None] = mapped_column(Text, default=None)
    root_cause: Mapped[str | None] = mapped_column(String(100), index=True, default=None)
    first_contact_resolution: Mapped[bool | None] = mapped_column(default=None)
    within_sla: Mapped[bool | None] = mapped_column(default=None)
    # Compensation granted, in minor units of the policy's currency.
    compensation_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    reopen_count: Mapped[int] = mapped_column(default=0)
    erased_at: Mapped[datetime | None] = mapped_column(default=None)


class Transition(Base):
    """Every change of status: who, when and why."""

    __tablename__ = "complaint_transition"
    __table_args__ = (UniqueConstraint("complaint_id", "step"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    complaint_id: Mapped[uuid.UUID]
    # The order of the complaint's steps: several may share one instant.
    step: Mapped[int]
    cycle: Mapped[int]
    from_status: Mapped[str | None] = mapped_column(String(30))
    to_status: Mapped[str] = mapped_column(String(30))
    actor: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime]


class SlaClock(Base):
    """One promise of one cycle of a complaint: first response, on-site visit or resolution."""

    __tablename__ = "sla_clock"

    complaint_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    cycle: Mapped[int] = mapped_column(primary_key=True)
    target: Mapped[str] = mapped_column(String(20), primary_key=True)
    target_seconds: Mapped[int]
    calendar: Mapped[str] = mapped_column(String(60))
    # None while the clock is paused short of its target.
    due_at: Mapped[datetime | None]
    warn_at: Mapped[datetime | None]
    warned_at: Mapped[datetime | None] = mapped_column(default=None)
    breached_at: Mapped[datetime | None] = mapped_column(default=None)
    met_at: Mapped[datetime | None] = mapped_column(default=None)


class Escalation(Base):
    __tablename__ = "complaint_escalation"
    # Levels only climb, so a complaint's escalations are ordered by level.
    __table_args__ = (UniqueConstraint("complaint_id", "level"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    complaint_id: Mapped[uuid.UUID]
    level: Mapped[int]
    level_name: Mapped[str] = mapped_column(String(60))
    must_act: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime]


class Compensation(Base):
    """Compensation on a complaint: granted within the offerer's authority, or awaiting a higher one."""

    __tablename__ = "compensation"
    __table_args__ = (
        Index("ix_compensation_complaint_id", "complaint_id", "requested_at", "id"),
        Index("ix_compensation_status", "status", "requested_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    complaint_id: Mapped[uuid.UUID]
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))
    requested_by: Mapped[str] = mapped_column(String(200))
    requested_role: Mapped[str] = mapped_column(String(20))
    requested_at: Mapped[datetime]
    # The lowest role that may approve it, when it awaits approval.
    requires_role: Mapped[str | None] = mapped_column(String(20))
    decided_by: Mapped[str | None] = mapped_column(String(200), default=None)
    decided_at: Mapped[datetime | None] = mapped_column(default=None)


class Survey(Base):
    """The customer's answer to the satisfaction survey of one cycle of a complaint."""

    __tablename__ = "survey"
    __table_args__ = (UniqueConstraint("complaint_id", "cycle"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    complaint_id: Mapped[uuid.UUID]
    cycle: Mapped[int]
    csat: Mapped[int]
    nps: Mapped[int | None]
    comment: Mapped[str | None] = mapped_column(Text)
    poor: Mapped[bool]
    answered_at: Mapped[datetime] = mapped_column(index=True)


class PolicyVersion(Base):
    """A version of the complaint policy (targets, calendars, ladder, limits); the newest is in force."""

    __tablename__ = "complaint_policy"

    version: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]


class CustomerTier(Base):
    """Projection of segmentation's verdict on each customer, kept from segment.tier_changed events."""

    __tablename__ = "customer_tier"

    customer_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    tier: Mapped[str] = mapped_column(String(20))
    key_account: Mapped[bool] = mapped_column(default=False)


class CustomerAddress(Base):
    """An e-mail address a customer writes from (the profile's or a named contact's), from customer events.

    It is how a mail finds its customer; erasure deletes it with the rest of the person.
    """

    __tablename__ = "customer_address"

    customer_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    # "profile", or "contact:<contact id>".
    source: Mapped[str] = mapped_column(String(60), primary_key=True)
    # Case-folded: mail systems treat addresses that way in practice.
    email: Mapped[str] = mapped_column(String(320), index=True)


class ConversationMessage(Base):
    """One message of a complaint's conversation: the customer's, an agent's reply, or a staff note.

    A mail nobody could place (an unknown sender) waits here with no complaint, in the triage list.
    ``message_id`` is the Internet Message-ID: unique, so a mail delivered again is stored once.
    """

    __tablename__ = "conversation_message"
    __table_args__ = (
        UniqueConstraint("message_id"),
        UniqueConstraint("complaint_id", "position"),
        Index("ix_conversation_message_triage", "triage", "at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    complaint_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    # The order of the complaint's conversation: several messages may share one instant.
    position: Mapped[int] = mapped_column(default=0)
    customer_id: Mapped[uuid.UUID | None] = mapped_column(index=True, default=None)
    # "customer", "reply" or "note".
    kind: Mapped[str] = mapped_column(String(20))
    message_id: Mapped[str | None] = mapped_column(String(998), default=None)
    in_reply_to: Mapped[str | None] = mapped_column(String(998), default=None)
    references: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The address a mail came from, for mail; the staff member's subject for replies and notes.
    sender: Mapped[str | None] = mapped_column(String(320), default=None)
    subject: Mapped[str | None] = mapped_column(String(998), default=None)
    body: Mapped[str] = mapped_column(Text)
    # References to the files kept in mail_attachment, and the ones refused ({"name", "refused"}).
    attachments: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # Why a mail waits for a person to place it; None once placed (or for anything not from mail).
    triage: Mapped[str | None] = mapped_column(String(60), default=None)
    at: Mapped[datetime]


class MailAttachment(Base):
    """A file that came with a mail, within the size limit; messages refer to it by its address."""

    __tablename__ = "mail_attachment"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    message_id: Mapped[uuid.UUID] = mapped_column(index=True)
    customer_id: Mapped[uuid.UUID | None] = mapped_column(index=True, default=None)
    name: Mapped[str | None] = mapped_column(String(200), default=None)
    media_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int]
    content: Mapped[bytes] = mapped_column(LargeBinary)


class StaffPerson(TimestampMixin, Base):
    """A person who answers complaints, known by the subject of their sign-in token."""

    __tablename__ = "staff_person"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    subject: Mapped[str] = mapped_column(String(200), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320), default=None)
    role: Mapped[str] = mapped_column(String(20))
    # Team names, skills (complaint categories and the like) and language tags: short lists, read whole.
    teams: Mapped[list[str]] = mapped_column(JSON, default=list)
    skills: Mapped[list[str]] = mapped_column(JSON, default=list)
    languages: Mapped[list[str]] = mapped_column(JSON, default=list)
    time_zone: Mapped[str] = mapped_column(String(60))
    # Weekday ("mon".."sun") -> ["HH:MM-HH:MM", ...] in the person's time zone.
    working_hours: Mapped[dict[str, list[str]]] = mapped_column(JSON, default=dict)
    # The most open complaints the person takes at once.
    capacity: Mapped[int]
    active: Mapped[bool] = mapped_column(default=True)


class StaffTeam(TimestampMixin, Base):
    __tablename__ = "staff_team"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(60), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    # The subject of the person who acts for the team when the escalation ladder names it.
    lead: Mapped[str | None] = mapped_column(String(200), default=None)


class Macro(TimestampMixin, Base):
    """A canned reply: one template per language, with placeholders from the customer and the complaint."""

    __tablename__ = "macro"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(60), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    # Language tag -> template text.
    bodies: Mapped[dict[str, str]] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(200))
    updated_by: Mapped[str] = mapped_column(String(200))


class RoutingPolicyVersion(Base):
    """A version of the routing policy (rules to teams); the newest is in force."""

    __tablename__ = "routing_policy"

    version: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]


idempotency_key = idempotency_table(Base.metadata)

# Who changed what and when, append-only (shared.audit).
audit_entry = audit.add_to(Base.metadata)
