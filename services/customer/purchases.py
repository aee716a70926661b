"""Purchases, refunds and the lifetime figures kept beside them. Only flushes; the caller commits."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.customer import service
from services.customer.errors import (
    LargeManualPurchase,
    NoExchangeRate,
    OrderRecordedDifferently,
    PurchaseNotFound,
    RefundExceedsPayment,
    RefundRecordedDifferently,
)
from services.customer.exchange_rates import RateTable, convert, rate_table, refund_in_reporting
from services.customer.ids import uuid7
from services.customer.ledger import RefundRefused, refund_amount
from services.customer.models import Purchase, PurchaseSummary, Refund
from services.customer.record_schemas import PurchaseCreate, PurchaseRead, RefundCreate, RefundRead
from services.customer.settings import CustomerSettings
from services.customer.view_marks import touch
from shared.events.customer import PurchaseRecorded, PurchaseRefunded, SalesChannel
from shared.money import from_minor, to_minor
from shared.outbox import stage
from shared.pagination import Page, keyset_page
from shared.problems import Unprocessable


@dataclass(frozen=True)
class SummaryDelta:
    """What some new purchases add to one customer's lifetime figures."""

    customer_id: uuid.UUID
    purchases: int
    spent_minor: int
    first_purchase_at: datetime
    last_purchase_at: datetime


_ADD_TO_SUMMARIES_PG = sa.text("""
    INSERT INTO purchase_summary AS s
        (customer_id, purchases, spent_minor, refunded_minor, first_purchase_at, last_purchase_at)
    SELECT d.customer_id, d.purchases, d.spent_minor, 0, d.first_purchase_at, d.last_purchase_at
    FROM unnest(:customer_ids, :purchases, :spent, :firsts, :lasts)
        AS d(customer_id, purchases, spent_minor, first_purchase_at, last_purchase_at)
    ON CONFLICT (customer_id) DO UPDATE SET
        purchases = s.purchases + excluded.purchases,
        spent_minor = s.spent_minor + excluded.spent_minor,
        first_purchase_at = least(s.first_purchase_at, excluded.first_purchase_at),
        last_purchase_at = greatest(s.last_purchase_at, excluded.last_purchase_at)
""").bindparams(
    sa.bindparam("customer_ids", type_=postgresql.ARRAY(sa.Uuid())),
    sa.bindparam("purchases", type_=postgresql.ARRAY(sa.Integer())),
    sa.bindparam("spent", type_=postgresql.ARRAY(sa.BigInteger())),
    sa.bindparam("firsts", type_=postgresql.ARRAY(sa.DateTime(timezone=True))),
    sa.bindparam("lasts", type_=postgresql.ARRAY(sa.DateTime(timezone=True))),
)


async def add_to_summaries(deltas: Sequence[SummaryDelta], *, session: AsyncSession) -> None:
    """Add purchases to the lifetime figures, creating them for a customer's first purchase."""
    if not deltas:
        return
    touch((d.customer_id for d in deltas), session=session)
    bind = session.bind
    assert bind is not None
    if bind.dialect.name == "postgresql":
        # One statement over arrays: a batch touches thousands of customers.
        await session.execute(
            _ADD_TO_SUMMARIES_PG,
            {
                "customer_ids": [d.customer_id for d in deltas],
                "purchases": [d.purchases for d in deltas],
                "spent": [d.spent_minor for d in deltas],
                "firsts": [d.first_purchase_at for d in deltas],
                "lasts": [d.last_purchase_at for d in deltas],
            },
        )
        return
    table = PurchaseSummary.__table__
    insert = sqlite.insert(table)
    current, new = table.c, insert.excluded
    statement = insert.on_conflict_do_update(
        index_elements=[current.customer_id],
        set_={
            "purchases": current.purchases + new.purchases,
            "spent_minor": current.spent_minor + new.spent_minor,
            "first_purchase_at": sa.func.min(
                sa.func.coalesce(current.first_purchase_at, new.first_purchase_at), new.first_purchase_at
            ),
            "last_purchase_at": sa.func.max(
                sa.func.coalesce(current.last_purchase_at, new.last_purchase_at), new.last_purchase_at
            ),
        },
    )
    await session.execute(
        statement,
        [
            {
                "customer_id": d.customer_id,
                "purchases": d.purchases,
                "spent_minor": d.spent_minor,
                "refunded_minor": 0,
                "first_purchase_at": d.first_purchase_at,
                "last_purchase_at": d.last_purchase_at,
            }
            for d in deltas
        ],
    )


def purchase_read(purchase: Purchase) -> PurchaseRead:
    return PurchaseRead(
        id=purchase.id,
        customer_id=purchase.customer_id,
        order_id=purchase.order_id,
        amount=from_minor(purchase.amount_minor),
        refunded=from_minor(purchase.refunded_minor),
        currency=purchase.currency,
        original_amount=from_minor(purchase.original_amount_minor),
        original_refunded=from_minor(purchase.original_refunded_minor),
        original_currency=purchase.original_currency,
        exchange_rate=Decimal(purchase.exchange_rate),
        channel=SalesChannel(purchase.channel),
        item_count=purchase.item_count,
        line_items=purchase.line_items,
        purchased_at=purchase.purchased_at,
        created_at=purchase.created_at,
    )


PURCHASE_COLUMNS = tuple(column.key for column in Purchase.__table__.columns)


def recorded_event(
    values: Mapping[str, Any], *, first_purchase: bool, imported: bool = False
) -> PurchaseRecorded:
    return PurchaseRecorded(
        customer_id=values["customer_id"],
        purchase_id=values["id"],
        order_id=values["order_id"],
        amount=from_minor(values["amount_minor"]),
        currency=values["currency"],
        channel=SalesChannel(values["channel"]),
        purchased_at=values["purchased_at"],
        item_count=values["item_count"],
        first_purchase=first_purchase,
        imported=imported,
        original_amount=from_minor(values["original_amount_minor"]),
        original_currency=values["original_currency"],
        exchange_rate=Decimal(values["exchange_rate"]),
    )


@dataclass(frozen=True)
class PurchaseWindow:
    """When a purchase may have happened: from the company's earliest records up to now, give or
    take the drift of the clocks of the systems that record sales."""

    earliest: datetime
    skew: timedelta

    @classmethod
    def of(cls, settings: CustomerSettings) -> PurchaseWindow:
        earliest = datetime.combine(settings.earliest_purchase, time(0), tzinfo=UTC)
        return cls(earliest=earliest, skew=timedelta(seconds=settings.clock_skew_seconds))

    def problem(self, moment: datetime | None, *, now: datetime) -> str | None:
        """Why ``moment`` cannot be when a purchase happened, or None if it can."""
        if moment is None:
            return None
        if moment < self.earliest:
            return (
                f"before {self.earliest.date().isoformat()}, the earliest purchase date "
                "(CSM_CUSTOMER_EARLIEST_PURCHASE)"
            )
        if moment > now + self.skew:
            return "in the future"
        return None


# What an amount in minor units can be (the events' Money: 14 digits, two of them decimals).
MAX_MINOR = 10**14 - 1


def conversion_problem(purchase_in: PurchaseCreate, rates: RateTable, *, now: datetime) -> str | None:
    """Why the purchase cannot be converted into the reporting currency, or None if it can."""
    moment = purchase_in.purchased_at or now
    rate = rates.rate_on(purchase_in.currency, moment)
    if rate is None:
        return rates.missing(purchase_in.currency, moment)
    if convert(to_minor(purchase_in.amount), rate) > MAX_MINOR:
        return f"The amount in {rates.reporting} would be beyond {from_minor(MAX_MINOR)}"
    return None


def new_purchase_row(
    customer_id: uuid.UUID, purchase_in: PurchaseCreate, *, rates: RateTable, now: datetime
) -> dict[str, Any]:
    """Every column of a new purchase's row, converted into the reporting currency (``conversion_problem``
    said it can be)."""
    paid = to_minor(purchase_in.amount)
    rate = rates.rate_on(purchase_in.currency, purchase_in.purchased_at or now)
    assert rate is not None
    return {
        "id": uuid7(),
        "customer_id": customer_id,
        "order_id": purchase_in.order_id,
        "amount_minor": convert(paid, rate),
        "refunded_minor": 0,
        "currency": rates.reporting,
        "original_amount_minor": paid,
        "original_refunded_minor": 0,
        "original_currency": purchase_in.currency,
        "exchange_rate": str(rate),
        "channel": purchase_in.channel.value,
        "item_count": purchase_in.item_count,
        "line_items": [item.model_dump(mode="json") for item in purchase_in.line_items]
        if purchase_in.line_items
        else None,
        "purchased_at": purchase_in.purchased_at or now,
        "created_at": now,
        "updated_at": now,
    }


async def record_purchase(
    *,
    session: AsyncSession,
    customer_id: uuid.UUID,
    purchase_in: PurchaseCreate,
    currency: str,
    window: PurchaseWindow,
    now: datetime,
    manual_limit: Decimal | None = None,
) -> tuple[Purchase, bool]:
    """Record a purchase once per order id; returns it and whether it is new.

    The customer's row is locked for the transaction, so that a customer's purchases are recorded
    one after another: exactly one of two arriving at once is their first (one thank-you, not two),
    and their events are staged in the order they commit.

    A purchase in another currency than ``currency`` (the reporting one) is converted at the rate in
    force when it happened; with no such rate it is refused. With ``manual_limit``, a converted
    amount above it is refused (a purchase that large recorded by hand takes a manager).
    """
    if (problem := window.problem(purchase_in.purchased_at, now=now)) is not None:
        raise Unprocessable(f"The purchase date is {problem}.", field="purchased_at")
    customer = await service.get(session=session, customer_id=customer_id, for_update=True)
    paid = (purchase_in.currency, to_minor(purchase_in.amount))
    existing = await _purchase_by_order(purchase_in.order_id, session=session)
    if existing is not None:
        return _same_order(existing, customer.id, paid), False
    rates = await rate_table(currency, session=session, currencies=[purchase_in.currency])
    if (problem := conversion_problem(purchase_in, rates, now=now)) is not None:
        raise NoExchangeRate(problem)
    row = new_purchase_row(customer.id, purchase_in, rates=rates, now=now)
    if manual_limit is not None and row["amount_minor"] > to_minor(manual_limit):
        raise LargeManualPurchase(manual_limit, currency)
    first_purchase = await session.get(PurchaseSummary, customer.id) is None
    purchase = Purchase(**row)
    try:
        async with session.begin_nested():
            session.add(purchase)
    except IntegrityError:
        # Another request recorded the same order a moment ago.
        existing = await _purchase_by_order(purchase_in.order_id, session=session)
        if existing is None:
            raise
        return _same_order(existing, customer.id, paid), False
    await add_to_summaries(
        [SummaryDelta(customer.id, 1, purchase.amount_minor, purchase.purchased_at, purchase.purchased_at)],
        session=session,
    )
    stage(
        recorded_event(row, first_purchase=first_purchase), session=session, source=service.SOURCE, time=now
    )
    return purchase, True


async def _purchase_by_order(order_id: str, *, session: AsyncSession) -> Purchase | None:
    return await session.scalar(sa.select(Purchase).where(Purchase.order_id == order_id))


def _same_order(existing: Purchase, customer_id: uuid.UUID, paid: tuple[str, int]) -> Purchase:
    if (
        existing.customer_id != customer_id
        or (existing.original_currency, existing.original_amount_minor) != paid
    ):
        raise OrderRecordedDifferently(existing.order_id, existing.id)
    return existing


async def list_purchases(
    *, session: AsyncSession, customer_id: uuid.UUID, limit: int, cursor: str | None
) -> Page[PurchaseRead]:
    """Newest first."""
    await service.get(session=session, customer_id=customer_id)
    query = sa.select(Purchase).where(Purchase.customer_id == customer_id)
    rows, next_cursor = await keyset_page(
        query,
        session=session,
        order=[Purchase.purchased_at, Purchase.id],
        descending=True,
        limit=limit,
        cursor=cursor,
    )
    return Page[PurchaseRead](items=[purchase_read(p) for p in rows], next_cursor=next_cursor)


def refund_read(refund: Refund, currency: str, original_currency: str) -> RefundRead:
    return RefundRead(
        id=refund.id,
        purchase_id=refund.purchase_id,
        reference=refund.reference,
        amount=from_minor(refund.amount_minor),
        currency=currency,
        original_amount=from_minor(refund.original_amount_minor),
        original_currency=original_currency,
        reason=refund.reason,
        refunded_at=refund.refunded_at,
    )


async def refund(
    *,
    session: AsyncSession,
    customer_id: uuid.UUID,
    purchase_id: uuid.UUID,
    refund_in: RefundCreate,
    currency: str,
    now: datetime,
) -> tuple[Refund, Purchase, bool]:
    """Give back part or all of a purchase, never more than was paid; idempotent by reference.

    The refund is given in the currency paid and converted at the purchase's own rate, so that a
    purchase refunded in full is refunded in full in the reporting currency too.
    """
    await service.get(session=session, customer_id=customer_id)
    # Locked on PostgreSQL, so two refunds of one purchase cannot both see the same amount left.
    purchase = await session.scalar(
        sa.select(Purchase)
        .where(Purchase.id == purchase_id, Purchase.customer_id == customer_id)
        .with_for_update()
    )
    if purchase is None:
        raise PurchaseNotFound(customer_id, purchase_id)
    existing = await session.scalar(
        sa.select(Refund).where(Refund.purchase_id == purchase.id, Refund.reference == refund_in.reference)
    )
    requested = to_minor(refund_in.amount) if refund_in.amount is not None else None
    if existing is not None:
        if requested is not None and requested != existing.original_amount_minor:
            raise RefundRecordedDifferently(refund_in.reference)
        return existing, purchase, False
    if refund_in.currency != purchase.original_currency:
        raise Unprocessable(f"The purchase was paid in {purchase.original_currency}.", field="currency")
    refunded_at = refund_in.refunded_at or now
    if refunded_at < purchase.purchased_at:
        raise Unprocessable("A refund cannot come before the purchase.", field="refunded_at")
    try:
        given_back = refund_amount(
            paid=purchase.original_amount_minor,
            refunded=purchase.original_refunded_minor,
            requested=requested,
        )
    except RefundRefused as error:
        raise RefundExceedsPayment(
            str(error),
            paid=str(from_minor(purchase.original_amount_minor)),
            refunded=str(from_minor(purchase.original_refunded_minor)),
        ) from None
    amount = refund_in_reporting(
        refunded_before=purchase.original_refunded_minor,
        refunded_now=given_back,
        rate=Decimal(purchase.exchange_rate),
    )
    record = Refund(
        id=uuid7(),
        purchase_id=purchase.id,
        customer_id=customer_id,
        reference=refund_in.reference,
        amount_minor=amount,
        original_amount_minor=given_back,
        reason=refund_in.reason,
        refunded_at=refunded_at,
        created_at=now,
        updated_at=now,
    )
    session.add(record)
    purchase.refunded_minor += amount
    purchase.original_refunded_minor += given_back
    purchase.updated_at = now
    touch([customer_id], session=session)
    await session.execute(
        sa.update(PurchaseSummary)
        .where(PurchaseSummary.customer_id == customer_id)
        .values(refunded_minor=PurchaseSummary.refunded_minor + amount)
    )
    await session.flush()
    stage(
        PurchaseRefunded(
            customer_id=customer_id,
            purchase_id=purchase.id,
            refund_id=record.id,
            amount=from_minor(amount),
            currency=purchase.currency,
            refunded_at=refunded_at,
            fully_refunded=purchase.original_refunded_minor == purchase.original_amount_minor,
            original_amount=from_minor(given_back),
            original_currency=purchase.original_currency,
        ),
        session=session,
        source=service.SOURCE,
        time=now,
    )
    return record, purchase, True
