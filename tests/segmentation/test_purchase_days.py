"""The buying models count purchase days: several orders on one day are one transaction."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from typing import cast

import numpy as np
import pytest
import sqlalchemy as sa

from services.segmentation import batch
from services.segmentation.assessment import DAY_SECONDS, Facts, Population, model_time
from services.segmentation.models import CustomerSegment
from services.segmentation.policy import DEFAULT_POLICY
from shared import migrations
from shared.db import UtcDateTime, create_engine
from shared.events import envelope_for
from shared.events.customer import PurchaseRecorded, PurchaseRefunded
from tests.harness import Databases
from tests.segmentation.test_bulk import NOW, purchase, records, service


@pytest.mark.parametrize("bulk", [True, False])
async def test_orders_on_one_day_are_one_purchase_day_and_a_full_refund_recounts(
    databases: Databases, bulk: bool
) -> None:
    customer = uuid.uuid4()
    # Three orders on one day (09:00, 06:36 and 04:12 UTC), one on another day.
    same_day = [purchase(customer, "10.00", days) for days in (10, 10.1, 10.2)]
    other_day = purchase(customer, "10.00", 3)
    app, consumer = await service(databases, bulk=bulk)
    try:
        await consumer.process(records([*same_day[:2], other_day]))
        await consumer.process(records([same_day[2]]))
        async with app.state.runtime.db.read() as session:
            segment = await session.get(CustomerSegment, customer)
            assert segment is not None and (segment.lifetime_frequency, segment.purchase_days) == (4, 2)
        bought = cast(PurchaseRecorded, other_day.data)
        refund = envelope_for(
            PurchaseRefunded(
                customer_id=customer,
                purchase_id=bought.purchase_id,
                refund_id=uuid.uuid4(),
                amount=Decimal("10.00"),
                currency="CNY",
                refunded_at=NOW,
                fully_refunded=True,
            ),
            source="/tests",
        )
        await consumer.process(records([refund]))
        async with app.state.runtime.db.read() as session:
            segment = await session.get(CustomerSegment, customer)
            assert segment is not None and (segment.lifetime_frequency, segment.purchase_days) == (3, 1)
            assert segment.last_purchase_at == cast(PurchaseRecorded, same_day[0].data).purchased_at
    finally:
        await app.state.runtime.db.dispose()


def test_the_models_see_repeat_purchase_days_not_repeat_orders() -> None:
    first = NOW - timedelta(days=70)
    facts = Facts(3, 300, 3, first, first + timedelta(hours=5), purchase_days=1)
    assert model_time(facts, NOW, 7.0) == (0.0, 0.0, 10.0)  # a one-time buyer, not x = 2
    assert model_time(Facts(3, 300, 3, first, NOW, purchase_days=2), NOW, 7.0) == (1.0, 10.0, 10.0)


def test_the_fit_counts_purchase_days() -> None:
    rng = np.random.default_rng(3)
    n = 400
    first = NOW.timestamp() - rng.uniform(30, 300, n) * DAY_SECONDS
    last = first + rng.uniform(0, 25, n) * DAY_SECONDS
    days = rng.integers(1, 4, n)
    last = np.where(days > 1, last, first)

    def population(orders: np.ndarray) -> Population:
        return Population(
            frequency=orders,
            monetary_minor=orders * 100,
            lifetime_frequency=orders,
            first_purchase=first,
            last_purchase=last,
            engaged=np.zeros(n, dtype=bool),
            last_nps=np.full(n, np.nan),
            signal_points=np.zeros(n),
            key_account=np.zeros(n, dtype=bool),
            purchase_days=days,
        )

    # Extra orders on days already counted change nothing in the fit.
    once = batch.fit_bgnbd(population(days), DEFAULT_POLICY, now=NOW.timestamp(), seed=0)
    doubled = batch.fit_bgnbd(population(days * 2), DEFAULT_POLICY, now=NOW.timestamp(), seed=0)
    assert once is not None and doubled is not None and once.parameters == doubled.parameters


async def test_the_migration_counts_the_ledger_days_of_existing_customers(databases: Databases) -> None:
    url = await databases.create("segmentation")
    await migrations.downgrade("segmentation", url, "0004")
    customer, unseen = uuid.uuid4(), uuid.uuid4()
    engine = create_engine(url)
    # The tables as revision 0004 left them (the models have moved on).
    segment = sa.table(
        "customer_segment",
        sa.column("customer_id", sa.Uuid()),
        *(sa.column(name, sa.Integer()) for name in ("frequency", "monetary_minor", "lifetime_frequency")),
        *(sa.column(name, sa.Integer()) for name in ("lifetime_monetary_minor", "policy_version")),
        *(sa.column(name, sa.Integer()) for name in ("cut_points_version", "signal_points")),
        *(sa.column(name, sa.Boolean()) for name in ("engaged", "key_account")),
        *(sa.column(name, sa.String()) for name in ("tier", "initial_tier", "tier_rule", "stage", "risk")),
        sa.column("risk_reason", sa.String()),
        *(sa.column(name, UtcDateTime()) for name in ("created_at", "updated_at")),
    )
    ledger = sa.table(
        "purchase",
        *(sa.column(name, sa.Uuid()) for name in ("purchase_id", "customer_id")),
        sa.column("amount_minor", sa.Integer()),
        sa.column("purchased_at", UtcDateTime()),
        sa.column("fully_refunded", sa.Boolean()),
    )
    try:
        async with engine.begin() as connection:
            await connection.execute(
                segment.insert(),
                [
                    dict.fromkeys(("frequency", "lifetime_frequency"), orders)
                    | dict.fromkeys(("tier", "initial_tier"), "lead")
                    | dict.fromkeys(("created_at", "updated_at"), NOW)
                    | dict.fromkeys(("engaged", "key_account"), False)
                    | dict.fromkeys(("monetary_minor", "lifetime_monetary_minor", "signal_points"), 0)
                    | dict.fromkeys(("policy_version", "cut_points_version"), 0)
                    | {"customer_id": key, "tier_rule": "r", "stage": "suspicion", "risk": "none"}
                    | {"risk_reason": "r"}
                    for key, orders in ((customer, 3), (unseen, 5))
                ],
            )
            await connection.execute(
                ledger.insert(),
                [
                    {
                        "purchase_id": uuid.uuid4(),
                        "customer_id": customer,
                        "amount_minor": 100,
                        "purchased_at": NOW - timedelta(hours=hours),
                        "fully_refunded": refunded,
                    }
                    for hours, refunded in ((0, False), (2, False), (30, False), (60, True))
                ],
            )
        await migrations.upgrade("segmentation", url)
        async with engine.connect() as connection:
            counted = sorted(
                (await connection.scalars(sa.text("SELECT purchase_days FROM customer_segment"))).all()
            )
    finally:
        await engine.dispose()
    # 09:00 and 07:00 today and 03:00 yesterday are two days (the refunded one does not count); the
    # customer the ledger does not know keeps their five purchases.
    assert counted == [2, 5]
