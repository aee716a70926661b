"""The one-stop 360 view: everything about a customer in one call and one database round trip.

Agents open this view far more often than anything changes, and it must stay fast at a million
customers. So it is one statement: the customer row with its lifetime figures, and each list
(contacts, recent purchases, open complaints, ...) as a JSON array from a correlated subquery,
each answered by an index. Arrays hold positional rows, decoded here; the same statement works on
PostgreSQL (json_agg) and SQLite (json_group_array).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, NamedTuple

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.customer import service
from services.customer.errors import CustomerNotFound
from services.customer.models import (
    ComplaintView,
    Consent,
    Contact,
    Customer,
    Interaction,
    Interest,
    NotificationView,
    Purchase,
    PurchaseSummary,
    ViewDocument,
)
from services.customer.record_schemas import Customer360
from services.customer.schemas import BUSINESS_KINDS
from services.customer.settings import CustomerSettings
from shared.money import from_minor

LISTS: dict[str, tuple[Any, ...]] = {
    "contacts": (
        Contact.id,
        Contact.customer_id,
        Contact.name,
        Contact.role,
        Contact.title,
        Contact.email,
        Contact.phone,
        Contact.backup_phone,
        Contact.notes,
        Contact.created_at,
        Contact.updated_at,
    ),
    "recent_purchases": (
        Purchase.id,
        Purchase.order_id,
        Purchase.amount_minor,
        Purchase.refunded_minor,
        Purchase.channel,
        Purchase.item_count,
        Purchase.purchased_at,
        Purchase.original_amount_minor,
        Purchase.original_currency,
    ),
    "open_complaints": (
        ComplaintView.complaint_id,
        ComplaintView.status,
        ComplaintView.category,
        ComplaintView.severity,
        ComplaintView.first_owner,
        ComplaintView.opened_at,
        ComplaintView.resolution_due_at,
    ),
    "recent_notifications": (
        NotificationView.notification_id,
        NotificationView.channel,
        NotificationView.purpose,
        NotificationView.playbook,
        NotificationView.step,
        NotificationView.sent_at,
    ),
    "recent_interactions": (
        Interaction.id,
        Interaction.channel,
        Interaction.kind,
        Interaction.outcome,
        Interaction.sentiment,
        Interaction.signal,
        Interaction.occurred_at,
    ),
    "interests": (Interest.topic,),
    "consents": (Consent.channel, Consent.purpose, Consent.granted, Consent.source, Consent.changed_at),
}

# Raise when the document's shape or rendering changes: stored documents are then built afresh.
DOCUMENT_VERSION = 1

# The table's columns, not the mapped class's attributes: a statement without ORM entities is run by
# the session as plain Core, skipping the ORM's compile state and result setup (a third of a read's CPU).
_STORED_TABLE = ViewDocument.__table__
_STORED = sa.select(_STORED_TABLE.c.document, _STORED_TABLE.c.etag, _STORED_TABLE.c.fingerprint).where(
    _STORED_TABLE.c.customer_id == sa.bindparam("customer_id", type_=sa.Uuid())
)

FIELDS = {
    "contacts": (
        "id",
        "customer_id",
        "name",
        "role",
        "title",
        "email",
        "phone",
        "backup_phone",
        "notes",
        "created_at",
        "updated_at",
    ),
    "recent_purchases": (
        "id",
        "order_id",
        "amount",
        "refunded",
        "channel",
        "item_count",
        "purchased_at",
        "original_amount",
        "original_currency",
    ),
    "open_complaints": (
        "id",
        "status",
        "category",
        "severity",
        "first_owner",
        "opened_at",
        "resolution_due_at",
    ),
    "recent_notifications": ("id", "channel", "purpose", "playbook", "step", "sent_at"),
    "recent_interactions": ("id", "channel", "kind", "outcome", "sentiment", "signal", "occurred_at"),
    "consents": ("channel", "purpose", "granted", "source", "changed_at"),
}


def _moment(value: Any) -> datetime | None:
    """A timestamp as either database renders it inside JSON, in UTC."""
    if value is None:
        return None
    moment = datetime.fromisoformat(value)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _money(value: int) -> Decimal:
    return from_minor(int(value))


# How each list's positional values become response fields (identity where absent).
CONVERT: dict[str, dict[int, Callable[[Any], Any]]] = {
    "contacts": {0: uuid.UUID, 1: uuid.UUID, 9: _moment, 10: _moment},
    "recent_purchases": {0: uuid.UUID, 2: _money, 3: _money, 6: _moment, 7: _money},
    "open_complaints": {0: uuid.UUID, 5: _moment, 6: _moment},
    "recent_notifications": {0: uuid.UUID, 5: _moment},
    "recent_interactions": {0: uuid.UUID, 6: _moment},
    "consents": {2: bool, 4: _moment},
}


def _statement(dialect: str, settings: CustomerSettings) -> sa.Select[Any]:
    customer_id = sa.bindparam("customer_id", type_=sa.Uuid())
    wheres: dict[str, tuple[Any, Sequence[Any], int]] = {
        "contacts": (
            Contact.customer_id == customer_id,
            (Contact.role, Contact.name, Contact.id),
            settings.view_contacts,
        ),
        "recent_purchases": (
            Purchase.customer_id == customer_id,
            (Purchase.purchased_at.desc(), Purchase.id.desc()),
            settings.view_recent_purchases,
        ),
        "open_complaints": (
            sa.and_(ComplaintView.customer_id == customer_id, ComplaintView.open.is_(True)),
            (ComplaintView.opened_at, ComplaintView.complaint_id),
            settings.view_open_complaints,
        ),
        "recent_notifications": (
            NotificationView.customer_id == customer_id,
            (NotificationView.sent_at.desc(), NotificationView.notification_id.desc()),
            settings.view_recent_notifications,
        ),
        "recent_interactions": (
            Interaction.customer_id == customer_id,
            (Interaction.occurred_at.desc(), Interaction.id.desc()),
            settings.view_recent_interactions,
        ),
        "interests": (Interest.customer_id == customer_id, (Interest.topic,), 1000),
        "consents": (Consent.customer_id == customer_id, (Consent.channel, Consent.purpose), 1000),
    }
    aggregate, row = (
        (sa.func.json_agg, sa.func.json_build_array)
        if dialect == "postgresql"
        else (sa.func.json_group_array, sa.func.json_array)
    )
    lists = []
    for name, columns in LISTS.items():
        where, order, limit = wheres[name]
        inner = sa.select(*columns).where(where).order_by(*order).limit(limit).subquery()
        array = sa.select(aggregate(row(*inner.c))).select_from(inner).scalar_subquery()
        lists.append(sa.cast(array, sa.Text()).label(name))
    summary = PurchaseSummary.__table__.c
    return (
        sa.select(
            # Columns, not the mapped class: no ORM object is built on this hot path.
            *Customer.__table__.c,
            summary.purchases,
            summary.spent_minor,
            summary.refunded_minor.label("summary_refunded_minor"),
            summary.first_purchase_at,
            summary.last_purchase_at,
            *lists,
        )
        .outerjoin(PurchaseSummary.__table__, summary.customer_id == Customer.id)
        .where(Customer.id == customer_id)
    )


class View:
    """Builds 360 views; the statement is made once per dialect and settings."""

    def __init__(self, settings: CustomerSettings, currency: str) -> None:
        self.settings = settings
        self.currency = currency
        self._statements: dict[str, sa.Select[Any]] = {}
        self._fingerprint: str | None = None

    def statement(self, dialect: str) -> sa.Select[Any]:
        if dialect not in self._statements:
            self._statements[dialect] = _statement(dialect, self.settings)
        return self._statements[dialect]

    @property
    def fingerprint(self) -> str:
        """What a stored document depends on besides the data: the settings it was built with."""
        if self._fingerprint is None:
            shape = (
                DOCUMENT_VERSION,
                self.currency,
                self.settings.min_business_contacts,
                self.settings.view_contacts,
                self.settings.view_recent_purchases,
                self.settings.view_open_complaints,
                self.settings.view_recent_notifications,
                self.settings.view_recent_interactions,
            )
            self._fingerprint = hashlib.blake2b(repr(shape).encode(), digest_size=8).hexdigest()
        return self._fingerprint

    async def read(self, *, session: AsyncSession, customer_id: uuid.UUID) -> Answer:
        """The view as JSON and its entity tag: the stored document, or built afresh where there is none."""
        stored = (await session.execute(_STORED, {"customer_id": customer_id})).one_or_none()
        if stored is not None and stored.fingerprint == self.fingerprint:
            return Answer(stored.document, stored.etag)
        dialect = session.get_bind().dialect.name
        row = (await session.execute(self.statement(dialect), {"customer_id": customer_id})).one_or_none()
        if row is None:
            raise CustomerNotFound(customer_id)
        if row._mapping["status"] in service.GONE:
            await service.get(session=session, customer_id=customer_id)  # raises the right 404
        return answer(self.document_of(row))

    def document_of(self, row: sa.Row[Any]) -> Customer360:
        """The view from one row of ``statement`` (a customer that is not gone)."""
        customer = row._mapping
        lists = {name: _decode(name, getattr(row, name)) for name in LISTS}
        spent, refunded = row.spent_minor or 0, row.summary_refunded_minor or 0
        contacts = lists["contacts"]
        contact_warning = None
        if customer["kind"] in BUSINESS_KINDS and len(contacts) < self.settings.min_business_contacts:
            contact_warning = (
                f"Only {len(contacts)} named contact(s): the relationship should not hang on one person "
                f"(at least {self.settings.min_business_contacts} wanted)."
            )
        return Customer360.model_validate(
            {
                "customer": {**customer, "tags": list(customer["tags"] or ())},
                "standing": {
                    name: customer[name]
                    for name in (
                        "tier",
                        "segment",
                        "value_group",
                        "loyalty_stage",
                        "key_account",
                        "churn_risk",
                        "probability_alive",
                        "expected_purchases",
                        "expected_purchases_days",
                        "tier_changed_at",
                        "risk_changed_at",
                    )
                },
                "totals": {
                    "purchases": row.purchases or 0,
                    "spent": from_minor(spent),
                    "refunded": from_minor(refunded),
                    "net": from_minor(spent - refunded),
                    "currency": self.currency,
                    "first_purchase_at": row.first_purchase_at,
                    "last_purchase_at": row.last_purchase_at,
                },
                "contacts": contacts,
                "contact_warning": contact_warning,
                "recent_purchases": lists["recent_purchases"],
                "open_complaints": lists["open_complaints"],
                "recent_notifications": lists["recent_notifications"],
                "recent_interactions": lists["recent_interactions"],
                "interests": [topic for (topic,) in lists["interests"]],
                "consents": lists["consents"],
            }
        )


class Answer(NamedTuple):
    document: bytes
    etag: str


def answer(view: Customer360) -> Answer:
    document = view.model_dump_json().encode()
    return Answer(document, hashlib.blake2b(document, digest_size=16).hexdigest())


def _decode(name: str, raw: str | None) -> list[Any]:
    rows = orjson.loads(raw) if raw else []
    if not rows:
        return []
    if name == "interests":
        return rows
    convert, fields = CONVERT[name], FIELDS[name]
    return [
        {
            field: (convert[i](value) if i in convert and value is not None else value)
            for i, (field, value) in enumerate(zip(fields, values, strict=True))
        }
        for values in rows
    ]
