"""The 360 read model: each customer's view stored as answered, so that a read is one indexed fetch.

Whatever changes what a view shows marks the customer in the session; just before the transaction
commits, the views of the marked customers are built from what the transaction sees and stored in
``view_document`` (or removed, for a customer erased or merged away). So the stored view is never
older than the last committed write: it commits with it.

Changes are marked two ways. ORM changes to the tables a view reads (the customer, contacts,
purchases and their lifetime figures, interactions, interests, consent, and the complaint and
notification projections) are seen after each flush. Statements that go round the ORM (bulk
inserts, set-based updates, COPY) call ``touch`` with the customers they wrote.

Before building, the marked customers are locked (a transaction-scoped advisory lock per customer
on PostgreSQL; SQLite has one writer at a time), so that two transactions changing one customer
build its view one after the other, and the second, reading after the first committed, sees both
changes. Not a row lock on ``customer``: the writes before it (a purchase, an interaction) hold a
key-share lock on that row through their foreign keys, and two of them would deadlock upgrading.

A bulk import marks thousands of customers per batch, many of them again in the next batch: it
``defer``s, which removes their stored views (reads build them afresh meanwhile, never stale) and
``fill_missing`` builds them once at the end.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from itertools import chain
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from services.customer import service
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
from services.customer.view import View, answer
from services.customer.view_marks import DIRTY, touch
from shared.db import Database
from shared.unit_of_work import Slot, unit_if_any, unit_of

# The read model's definition, set once per database (``install``).
VIEW: Slot[View] = Slot("customer.view")
# Set in a unit of work whose changed views are removed rather than rebuilt (``defer``).
DEFERRED: Slot[bool] = Slot("customer.view_deferred")
CHUNK = 500

# The attribute that names the customer, per table a view reads.
_CUSTOMER_OF: dict[type[Any], str] = {
    Customer: "id",
    Contact: "customer_id",
    Purchase: "customer_id",
    PurchaseSummary: "customer_id",
    Interaction: "customer_id",
    Interest: "customer_id",
    Consent: "customer_id",
    ComplaintView: "customer_id",
    NotificationView: "customer_id",
}


def install(db: Database, view: View) -> None:
    """Sessions of ``db`` keep the read model (a database without it only removes stale views)."""
    db.extensions.put(VIEW, view)


def installed(db: Database) -> View | None:
    return db.extensions.get(VIEW)


def defer(*, session: AsyncSession) -> None:
    """Remove, rather than rebuild, the views this transaction changes (``fill_missing`` builds them)."""
    unit_of(session).cache.put(DEFERRED, True)


def _chunks(ids: Sequence[uuid.UUID]) -> Iterable[Sequence[uuid.UUID]]:
    return (ids[start : start + CHUNK] for start in range(0, len(ids), CHUNK))


@event.listens_for(Session, "after_flush")
def _mark_flushed(session: Session, _context: Any) -> None:
    found: set[uuid.UUID] = set()
    for instance in chain(session.new, session.dirty, session.deleted):
        attribute = _CUSTOMER_OF.get(type(instance))
        if attribute is None:
            continue
        state = sa.inspect(instance)
        history = state.attrs[attribute].history
        # The customer it belongs to now, and the one it belonged to before (a row moved by a merge).
        found.update(v for v in (state.dict.get(attribute), *history.deleted) if v is not None)
    if found and unit_if_any(session) is not None:
        touch(found, session=session)


@event.listens_for(Session, "before_commit")
def _rebuild_before_commit(session: Session) -> None:
    if session.new or session.dirty or session.deleted:
        session.flush()  # so that what is still pending is marked too
    unit = unit_if_any(session)
    if unit is None:
        return
    dirty = unit.cache.pop(DIRTY)
    if not dirty:
        return
    view = unit.extensions.get(VIEW)
    rebuild(session, None if unit.cache.get(DEFERRED) else view, dirty)


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    unit = unit_if_any(session)
    if unit is not None:
        unit.cache.pop(DIRTY)


def rebuild(executor: Session | sa.Connection, view: View | None, customer_ids: Iterable[uuid.UUID]) -> None:
    """Store the views of these customers as the transaction sees them; remove them without a ``view``."""
    ids = sorted(customer_ids)
    table = ViewDocument.__table__
    if view is None:
        for chunk in _chunks(ids):
            executor.execute(sa.delete(table).where(table.c.customer_id.in_(chunk)))
        return
    dialect = executor.get_bind().dialect.name if isinstance(executor, Session) else executor.dialect.name
    if dialect == "postgresql":
        # In key order, so that two transactions taking the same customers' locks cannot deadlock.
        for key in sorted({_lock_key(customer_id) for customer_id in ids}):
            executor.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))
    statement = view.statement(dialect)
    documents, gone = [], []
    for customer_id in ids:
        row = executor.execute(statement, {"customer_id": customer_id}).one_or_none()
        if row is None or row._mapping["status"] in service.GONE:
            gone.append(customer_id)
            continue
        document, etag = answer(view.document_of(row))
        documents.append(
            {
                "customer_id": customer_id,
                "document": document,
                "etag": etag,
                "fingerprint": view.fingerprint,
            }
        )
    for chunk in _chunks(gone):
        executor.execute(sa.delete(table).where(table.c.customer_id.in_(chunk)))
    if documents:
        insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
        upsert = insert.on_conflict_do_update(
            index_elements=[table.c.customer_id],
            set_={name: insert.excluded[name] for name in ("document", "etag", "fingerprint")},
        )
        executor.execute(upsert, documents)


def _lock_key(customer_id: uuid.UUID) -> int:
    return int.from_bytes(customer_id.bytes[:8], "big", signed=True)


def missing(limit: int, fingerprint: str, after: uuid.UUID | None = None) -> sa.Select[Any]:
    """Customers still here whose stored view is absent or was built with other settings, by id."""
    document = ViewDocument.__table__.c
    return (
        sa.select(Customer.id)
        .outerjoin(ViewDocument.__table__, document.customer_id == Customer.id)
        .where(
            Customer.id > after if after is not None else sa.true(),
            Customer.status.not_in(service.GONE),
            sa.or_(document.customer_id.is_(None), document.fingerprint != fingerprint),
        )
        .order_by(Customer.id)
        .limit(limit)
    )


async def fill_missing(db: Database, *, batch: int = 1000) -> int:
    """Build the views that are not stored (after a bulk import, or other settings); returns how many."""
    view = installed(db)
    if view is None:
        return 0
    built, after = 0, None
    while True:
        async with db.unit_of_work() as session:
            query = missing(batch, view.fingerprint, after)
            ids: list[uuid.UUID] = list((await session.scalars(query)).all())
            touch(ids, session=session)
        built += len(ids)
        if len(ids) < batch:
            return built
        after = ids[-1]
