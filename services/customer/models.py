"""The customer service's tables."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.customer.profile_rules import name_key
from shared import audit
from shared.db import TYPE_ANNOTATION_MAP, TimestampMixin, new_id, service_metadata, utcnow

# Byte order, not the locale's: a name prefix is then a contiguous range of the index on PostgreSQL.
SearchKey = String(200).with_variant(String(200, collation="C"), "postgresql")


def _name_key_of_row(context: Any) -> str:
    return name_key(context.get_current_parameters()["name"])


def _created_at_of_row(context: Any) -> datetime:
    created: datetime | None = context.get_current_parameters().get("created_at")
    return created or utcnow()


class Base(DeclarativeBase):
    metadata = service_metadata()
    type_annotation_map = TYPE_ANNOTATION_MAP
    # Every model here is mapped to a plain table (SQLAlchemy declares any FromClause).
    __table__: ClassVar[Table]


class Customer(TimestampMixin, Base):
    __tablename__ = "customer"
    __table_args__ = (
        Index("ix_customer_name_key_id", "name_key", "id"),
        # Lists without a name come in order of registration here: keyset pages on these.
        Index("ix_customer_created_at_id", "created_at", "id"),
        Index("ix_customer_status_created_at", "status", "created_at", "id"),
        Index("ix_customer_tier_created_at", "tier", "created_at", "id"),
        Index("ix_customer_account_manager_created_at", "account_manager", "created_at", "id"),
    )

    # A random key (version 4), unlike the other tables' time-ordered ones: a customer's id is
    # handed out and should say nothing, not even when they registered.

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    # The key in the system the customer was imported from: imports are idempotent by it.
    external_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(200))
    name_key: Mapped[str] = mapped_column(SearchKey, default=_name_key_of_row)
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    phone: Mapped[str | None] = mapped_column(String(32), index=True)
    backup_phone: Mapped[str | None] = mapped_column(String(32), index=True)
    locale: Mapped[str] = mapped_column(String(35))
    time_zone: Mapped[str] = mapped_column(String(64))
    address: Mapped[str | None] = mapped_column(String(500))
    region: Mapped[str | None] = mapped_column(String(100))
    industry: Mapped[str | None] = mapped_column(String(100))
    company_size: Mapped[str | None] = mapped_column(String(20))
    acquisition_source: Mapped[str | None] = mapped_column(String(200))
    acquisition_channel: Mapped[str | None] = mapped_column(String(20))
    # active, dormant, lost, erased; "merged" for a duplicate folded into ``merged_into``.
    status: Mapped[str] = mapped_column(String(20), default="active")
    # Shown with the profile; ``customer_tag`` is the copy that search uses.
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    account_manager: Mapped[str | None] = mapped_column(String(100))
    notes: Mapped[str | None] = mapped_column(Text)
    customer_since: Mapped[datetime] = mapped_column(default=_created_at_of_row)
    merged_into: Mapped[uuid.UUID | None]
    # Projection of segmentation's verdict, kept current from its events.
    tier: Mapped[str | None] = mapped_column(String(20))
    segment: Mapped[str | None] = mapped_column(String(100))
    value_group: Mapped[str | None] = mapped_column(String(20))
    loyalty_stage: Mapped[str | None] = mapped_column(String(30))
    key_account: Mapped[bool] = mapped_column(default=False)
    tier_changed_at: Mapped[datetime | None]
    churn_risk: Mapped[str | None] = mapped_column(String(20))
    probability_alive: Mapped[float | None] = mapped_column(Float)
    # Purchase days segmentation's buying model expects over the next expected_purchases_days.
    expected_purchases: Mapped[float | None] = mapped_column(Float)
    expected_purchases_days: Mapped[int | None] = mapped_column(Integer)
    risk_changed_at: Mapped[datetime | None]


class CustomerTag(Base):
    __tablename__ = "customer_tag"

    tag: Mapped[str] = mapped_column(String(50), primary_key=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customer.id"), primary_key=True, index=True)


class Contact(TimestampMixin, Base):
    """A named person at a business customer, so that the relationship never hangs on one of them."""

    __tablename__ = "contact"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customer.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    title: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    phone: Mapped[str | None] = mapped_column(String(32), index=True)
    backup_phone: Mapped[str | None] = mapped_column(String(32))
    notes: Mapped[str | None] = mapped_column(Text)


class RelationshipRecord(TimestampMixin, Base):
    __tablename__ = "relationship_record"

    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customer.id"), primary_key=True)
    past_cooperation: Mapped[str | None] = mapped_column(Text)
    current_cooperation: Mapped[str | None] = mapped_column(Text)
    expected_cooperation: Mapped[str | None] = mapped_column(Text)
    competitors: Mapped[list[str]] = mapped_column(JSON, default=list)
    notes: Mapped[str | None] = mapped_column(Text)


class Installation(TimestampMixin, Base):
    __tablename__ = "installation"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customer.id"), index=True)
    product: Mapped[str] = mapped_column(String(200))
    serial_number: Mapped[str | None] = mapped_column(String(100))
    location: Mapped[str | None] = mapped_column(String(300))
    installed_at: Mapped[datetime | None]
    warranty_until: Mapped[datetime | None]
    notes: Mapped[str | None] = mapped_column(Text)


class Attachment(TimestampMixin, Base):
    __tablename__ = "attachment"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customer.id"), index=True)
    kind: Mapped[str] = mapped_column(String(30))
    url: Mapped[str] = mapped_column(String(2000))
    caption: Mapped[str | None] = mapped_column(String(200))


class Purchase(TimestampMixin, Base):
    __tablename__ = "purchase"
    __table_args__ = (
        CheckConstraint(
            "refunded_minor >= 0 AND refunded_minor <= amount_minor", name="refund_within_amount"
        ),
        # Serves both the recent purchases of the 360 view and the lifetime totals, from the index alone.
        Index(
            "ix_purchase_customer_history", "customer_id", "purchased_at", "amount_minor", "refunded_minor"
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customer.id"))
    # The company's own order number: recording it twice records one purchase.
    order_id: Mapped[str] = mapped_column(String(100), unique=True)
    # In the reporting currency (``currency``): what every figure and event counts.
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    refunded_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str] = mapped_column(String(3))
    # As paid, in the currency paid, and the rate (reporting units per unit paid) it was converted at;
    # refunds are given in the currency paid and converted at the same rate.
    # (The server defaults only stood for the rows of before, filled by migration 0007.)
    original_amount_minor: Mapped[int] = mapped_column(BigInteger, server_default="0")
    original_refunded_minor: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    original_currency: Mapped[str] = mapped_column(String(3), server_default="")
    exchange_rate: Mapped[str] = mapped_column(String(40), server_default="1")
    channel: Mapped[str] = mapped_column(String(20))
    item_count: Mapped[int] = mapped_column(Integer)
    line_items: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    purchased_at: Mapped[datetime]


class PurchaseSummary(Base):
    """Lifetime figures per customer, kept with every purchase and refund so the 360 view reads one row."""

    __tablename__ = "purchase_summary"

    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customer.id"), primary_key=True)
    purchases: Mapped[int] = mapped_column(Integer, default=0)
    spent_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    first_purchase_at: Mapped[datetime | None]
    last_purchase_at: Mapped[datetime | None]


class Refund(TimestampMixin, Base):
    __tablename__ = "refund"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    purchase_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("purchase.id"))
    customer_id: Mapped[uuid.UUID] = mapped_column(index=True)
    reference: Mapped[str] = mapped_column(String(100))
    amount_minor: Mapped[int] = mapped_column(BigInteger)  # in the reporting currency
    # In the currency the purchase was paid (the server default only stood for refunds of before).
    original_amount_minor: Mapped[int] = mapped_column(BigInteger, server_default="0")
    reason: Mapped[str | None] = mapped_column(String(500))
    refunded_at: Mapped[datetime]

    __table_args__ = (Index("ix_refund_purchase_reference", "purchase_id", "reference", unique=True),)


class ExchangeRate(Base):
    """How many units of the reporting currency one unit of ``currency`` is worth, from a moment on.

    Kept by an operator (an admin or a manager); a purchase is converted at the rate in force when it
    happened, the latest ``effective_from`` not after it. Rates are history: a rate once stated for
    a moment is not changed, a new one is added from a later moment.
    """

    __tablename__ = "exchange_rate"
    __table_args__ = (
        Index("ix_exchange_rate_pair_from", "reporting_currency", "currency", "effective_from", unique=True),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    currency: Mapped[str] = mapped_column(String(3))
    reporting_currency: Mapped[str] = mapped_column(String(3))
    # A decimal written out (exact on every database).
    rate: Mapped[str] = mapped_column(String(40))
    effective_from: Mapped[datetime]
    stated_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Interaction(TimestampMixin, Base):
    __tablename__ = "interaction"
    __table_args__ = (Index("ix_interaction_customer_occurred", "customer_id", "occurred_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customer.id"))
    channel: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(20))
    summary: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str | None] = mapped_column(String(200))
    sentiment: Mapped[str | None] = mapped_column(String(20))
    signal: Mapped[str | None] = mapped_column(String(40))
    logged_by: Mapped[str] = mapped_column(String(100))
    occurred_at: Mapped[datetime]


class Interest(Base):
    __tablename__ = "interest"

    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customer.id"), primary_key=True)
    topic: Mapped[str] = mapped_column(String(50), primary_key=True)
    source: Mapped[str] = mapped_column(String(100))
    since: Mapped[datetime]


class InterestChange(Base):
    __tablename__ = "interest_change"
    __table_args__ = (Index("ix_interest_change_customer_changed", "customer_id", "changed_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customer.id"))
    topic: Mapped[str] = mapped_column(String(50))
    added: Mapped[bool]
    source: Mapped[str] = mapped_column(String(100))
    changed_by: Mapped[str] = mapped_column(String(100))
    changed_at: Mapped[datetime]


class Consent(Base):
    """The customer's current word on being contacted on one channel for one purpose."""

    __tablename__ = "consent"

    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customer.id"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(20), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(20), primary_key=True)
    granted: Mapped[bool]
    source: Mapped[str] = mapped_column(String(100))
    changed_at: Mapped[datetime]


class ConsentChange(Base):
    __tablename__ = "consent_change"
    __table_args__ = (Index("ix_consent_change_customer_changed", "customer_id", "changed_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customer.id"))
    channel: Mapped[str] = mapped_column(String(20))
    purpose: Mapped[str] = mapped_column(String(20))
    granted: Mapped[bool]
    source: Mapped[str] = mapped_column(String(100))
    changed_by: Mapped[str] = mapped_column(String(100))
    changed_at: Mapped[datetime]


class ComplaintView(Base):
    """Projection of the complaints service's tickets for this customer, from its events."""

    __tablename__ = "complaint_view"
    __table_args__ = (Index("ix_complaint_view_customer_open", "customer_id", "open"),)

    complaint_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    customer_id: Mapped[uuid.UUID]
    status: Mapped[str] = mapped_column(String(30))
    open: Mapped[bool]
    category: Mapped[str | None] = mapped_column(String(40))
    severity: Mapped[str | None] = mapped_column(String(20))
    first_owner: Mapped[str | None] = mapped_column(String(200))
    opened_at: Mapped[datetime | None]
    resolution_due_at: Mapped[datetime | None]
    changed_at: Mapped[datetime]


class NotificationView(Base):
    """Projection of the messages notify sent this customer, the latest few per customer."""

    __tablename__ = "notification_view"
    __table_args__ = (Index("ix_notification_view_customer_sent", "customer_id", "sent_at"),)

    notification_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    customer_id: Mapped[uuid.UUID]
    channel: Mapped[str] = mapped_column(String(20))
    purpose: Mapped[str] = mapped_column(String(20))
    playbook: Mapped[str] = mapped_column(String(100))
    step: Mapped[str] = mapped_column(String(100))
    sent_at: Mapped[datetime]


class Erasure(Base):
    """That a customer was erased, when and by whom; a digest of the old external id stops re-imports."""

    __tablename__ = "erasure"

    customer_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    erased_at: Mapped[datetime]
    erased_by: Mapped[str] = mapped_column(String(100))
    external_id_digest: Mapped[str | None] = mapped_column(String(64), index=True)


class ImportJob(Base):
    """A CSV file sent over HTTP, imported by a worker; progress commits with each batch."""

    __tablename__ = "import_job"
    __table_args__ = (Index("ix_import_job_status_created", "status", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(20))
    # pending, running, done or failed
    status: Mapped[str] = mapped_column(String(20))
    created_by: Mapped[str] = mapped_column(String(100))
    # How the file writes its dates (strptime notation; ISO 8601 when None), and the zone of
    # those written without an offset.
    date_format: Mapped[str | None] = mapped_column(String(100), default=None)
    time_zone: Mapped[str] = mapped_column(String(60), default="UTC")
    rows: Mapped[int] = mapped_column(Integer, default=0)
    imported: Mapped[int] = mapped_column(Integer, default=0)
    already_imported: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime]
    # A running job's worker touches this with every batch; a job left untouched longer than the
    # lease is taken over (its worker died), never while it is alive.
    heartbeat_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class ImportChunk(Base):
    """The uploaded file, in pieces, so that any replica's worker can read it."""

    __tablename__ = "import_chunk"

    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("import_job.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class ImportRejection(Base):
    __tablename__ = "import_rejection"

    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("import_job.id"), primary_key=True)
    line: Mapped[int] = mapped_column(Integer, primary_key=True)
    reason: Mapped[str] = mapped_column(String(1000))
    row: Mapped[str] = mapped_column(Text)


class ViewDocument(Base):
    """The 360 read model: each customer's view as answered, rebuilt in the transaction that changes it.

    ``fingerprint`` names the settings the document was built with (list lengths, currency, ...): a
    process configured otherwise does not serve it but builds the view afresh.
    """

    __tablename__ = "view_document"

    customer_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    document: Mapped[bytes] = mapped_column(LargeBinary)
    etag: Mapped[str] = mapped_column(String(40))
    fingerprint: Mapped[str] = mapped_column(String(40))


# Who changed what and when, append-only (shared.audit).
audit_entry = audit.add_to(Base.metadata)
