"""Customer records and purchases: the logic behind the API, which only flushes."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.customer.models import Customer, Purchase
from services.customer.schemas import CustomerCreate, PurchaseCreate
from shared.events.customer import (
    CustomerKind,
    CustomerProfile,
    CustomerRegistered,
    CustomerStatus,
    PurchaseRecorded,
    SalesChannel,
)
from shared.money import from_minor, to_minor
from shared.outbox import stage
from shared.problems import Conflict, NotFound, Unprocessable

SOURCE = "/csm/customer"


def profile_of(customer: Customer) -> CustomerProfile:
    return CustomerProfile(
        kind=CustomerKind(customer.kind),
        name=customer.name,
        email=customer.email,
        phone=customer.phone,
        backup_phone=customer.backup_phone,
        locale=customer.locale,
        time_zone=customer.time_zone,
        region=customer.region,
        status=CustomerStatus(customer.status),
    )


async def register(*, session: AsyncSession, customer_in: CustomerCreate, now: datetime) -> Customer:
    customer = Customer(
        id=uuid.uuid4(),
        kind=customer_in.kind.value,
        name=customer_in.name,
        email=customer_in.email,
        phone=customer_in.phone,
        backup_phone=customer_in.backup_phone,
        locale=customer_in.locale,
        time_zone=customer_in.time_zone,
        region=customer_in.region,
        status=CustomerStatus.active.value,
        created_at=now,
        updated_at=now,
    )
    session.add(customer)
    await session.flush()
    stage(
        session,
        CustomerRegistered(customer_id=customer.id, profile=profile_of(customer), registered_at=now),
        source=SOURCE,
        time=now,
    )
    return customer


async def get(*, session: AsyncSession, customer_id: uuid.UUID) -> Customer:
    customer = await session.get(Customer, customer_id)
    if customer is None or customer.status == CustomerStatus.erased:
        raise NotFound(f"No customer {customer_id}.")
    return customer


async def record_purchase(
    *,
    session: AsyncSession,
    customer_id: uuid.UUID,
    purchase_in: PurchaseCreate,
    currency: str,
    now: datetime,
) -> tuple[Purchase, bool]:
    """Record a purchase once per order id; returns it and whether it is new."""
    customer = await get(session=session, customer_id=customer_id)
    if purchase_in.currency != currency:
        raise Unprocessable(f"Purchases are recorded in {currency}, the company's reporting currency.", field="currency")
    amount_minor = to_minor(purchase_in.amount)
    existing = await _purchase_by_order(session, purchase_in.order_id)
    if existing is not None:
        return _same_order(existing, customer.id, amount_minor), False
    first_purchase = (
        await session.scalar(sa.select(Purchase.id).where(Purchase.customer_id == customer.id).limit(1))
    ) is None
    purchase = Purchase(
        id=uuid.uuid4(),
        customer_id=customer.id,
        order_id=purchase_in.order_id,
        amount_minor=amount_minor,
        currency=currency,
        channel=purchase_in.channel.value,
        item_count=purchase_in.item_count,
        purchased_at=purchase_in.purchased_at or now,
        created_at=now,
        updated_at=now,
    )
    try:
        async with session.begin_nested():
            session.add(purchase)
    except IntegrityError:
        # Another request recorded the same order a moment ago.
        existing = await _purchase_by_order(session, purchase_in.order_id)
        if existing is None:
            raise
        return _same_order(existing, customer.id, amount_minor), False
    stage(
        session,
        PurchaseRecorded(
            customer_id=customer.id,
            purchase_id=purchase.id,
            order_id=purchase.order_id,
            amount=from_minor(amount_minor),
            currency=currency,
            channel=SalesChannel(purchase.channel),
            purchased_at=purchase.purchased_at,
            item_count=purchase.item_count,
            first_purchase=first_purchase,
        ),
        source=SOURCE,
        time=now,
    )
    return purchase, True


async def _purchase_by_order(session: AsyncSession, order_id: str) -> Purchase | None:
    return await session.scalar(sa.select(Purchase).where(Purchase.order_id == order_id))


def _same_order(existing: Purchase, customer_id: uuid.UUID, amount_minor: int) -> Purchase:
    if existing.customer_id != customer_id or existing.amount_minor != amount_minor:
        raise Conflict(
            f"Order {existing.order_id} is already recorded with a different customer or amount.",
            purchase_id=str(existing.id),
        )
    return existing
