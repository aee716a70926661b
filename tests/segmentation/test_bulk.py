"""A batch applied set-based leaves exactly what its events leave applied one at a time (batches of one).

With ``bulk=False`` the consumer has no ``apply_batch`` and calls the per-type handler for each
event, which applies it as a batch of one through the same code.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

import httpx
import numpy as np
import orjson
import sqlalchemy as sa
from aiokafka import ConsumerRecord
from fastapi import FastAPI

from services.segmentation.app import create_app
from services.segmentation.models import CustomerSegment, Purchase, TierChange
from services.segmentation.policy import DEFAULT_POLICY
from services.segmentation.settings import SegmentationSettings
from shared.clock import ManualClock
from shared.events import Envelope, Event, envelope_for
from shared.events.customer import PurchaseRecorded, PurchaseRefunded, SalesChannel
from shared.inbox import EventConsumer
from shared.messaging import outbox_message
from shared.roles import Role
from tests.harness import Databases, auth, common_settings_for_tests
from tests.shared.bus_helpers import as_consumed
from tests.shared.event_examples import example

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def records(envelopes: list[Envelope[Event]]) -> list[ConsumerRecord[bytes, bytes]]:
    return as_consumed(envelopes, prefix="bulk.")


def purchase(customer: uuid.UUID, amount: str, days_ago: float, **fields: Any) -> Envelope[Event]:
    return envelope_for(
        PurchaseRecorded(
            customer_id=customer,
            purchase_id=uuid.uuid4(),
            order_id=f"SO-{uuid.uuid4().hex[:8]}",
            amount=Decimal(amount),
            currency="CNY",
            channel=SalesChannel.web,
            purchased_at=NOW - timedelta(days=days_ago),
            item_count=1,
            first_purchase=False,
            **fields,
        ),
        source="/tests",
    )


def registered(customer: uuid.UUID) -> Envelope[Event]:
    return envelope_for(example("csm.customer.registered.v1", customer), source="/tests")


async def service(databases: Databases, *, bulk: bool) -> tuple[FastAPI, EventConsumer]:
    url = await databases.create("segmentation")
    settings = SegmentationSettings(
        database_url=url, common=common_settings_for_tests("127.0.0.1:1", "bulk.")
    )
    app = create_app(settings, clock=ManualClock(NOW))
    consumer = app.state.runtime.consumer
    assert consumer.apply_batch is not None
    if not bulk:
        consumer.apply_batch = None
    return app, consumer


async def contents(app: FastAPI) -> dict[str, Any]:
    """Everything the batch left, without the identifiers drawn at random (history and event ids)."""
    async with app.state.runtime.db.read() as session:
        segments = [
            dict(r._mapping)
            for r in await session.execute(
                sa.select(CustomerSegment.__table__).order_by(CustomerSegment.customer_id)
            )
        ]
        purchases = [
            dict(r._mapping)
            for r in await session.execute(sa.select(Purchase.__table__).order_by(Purchase.purchase_id))
        ]
        history = [
            {k: v for k, v in r._mapping.items() if k != "id"}
            for r in await session.execute(
                sa.select(TierChange.__table__).order_by(TierChange.customer_id, TierChange.cause_event_id)
            )
        ]
        events = []
        for row in await session.execute(sa.select(outbox_message).order_by(outbox_message.c.seq)):
            envelope = orjson.loads(row.body)
            events.append((row.topic, row.key, row.event_type, envelope["data"], envelope.get("causationid")))
    return {
        "segments": segments,
        "purchases": purchases,
        "history": history,
        "events": sorted(events, key=lambda e: (e[1], str(e[3].get("cause_event_id")), e[2])),
    }


async def test_a_batch_of_purchases_applied_at_once_leaves_what_the_handlers_leave(
    databases: Databases,
) -> None:
    rng = random.Random(11)
    customers = [uuid.uuid4() for _ in range(40)]
    # Some customers are known before (registered, a first purchase); then two batches of
    # purchases, several per customer, some outside the window, amounts that cross tiers.
    before = [registered(c) for c in customers[:20]] + [purchase(c, "120.00", 30) for c in customers[:10]]

    def bought(c: uuid.UUID) -> Envelope[Event]:
        return purchase(c, f"{rng.randint(1, 30000)}.{rng.randint(0, 99):02d}", rng.uniform(0, 500))

    batches = [
        [rng.choice([registered, bought])(rng.choice(customers)) for _ in range(150)] for _ in range(2)
    ]
    batches[1].append(purchase(customers[0], "99.00", 1, imported=True))
    results = []
    for bulk in (True, False):
        app, consumer = await service(databases, bulk=bulk)
        try:
            await consumer.process(records(before))
            for batch in batches:
                app.state.runtime.clock.advance(timedelta(hours=1))  # so a row not rewritten shows it
                await consumer.process(records(batch))
            results.append(await contents(app))
        finally:
            await app.state.runtime.db.dispose()
    with_bulk, per_event = results
    assert len(with_bulk["segments"]) == 40 and len(with_bulk["purchases"]) > 100
    assert len(with_bulk["history"]) > 40 and len(with_bulk["events"]) >= len(with_bulk["history"])
    assert {t for *_, t, _, _ in with_bulk["events"]} >= {"csm.segment.tier_changed.v1"}
    assert any(e[3].get("imported") for e in with_bulk["events"]), "the imported cause is carried"
    assert with_bulk == per_event


async def test_a_purchase_and_its_refund_in_full_in_one_batch_leave_nothing_counted(
    databases: Databases,
) -> None:
    app, consumer = await service(databases, bulk=True)
    try:
        customer = uuid.uuid4()
        bought = purchase(customer, "5000.00", 1)
        refund = envelope_for(
            PurchaseRefunded(
                customer_id=customer,
                purchase_id=cast(PurchaseRecorded, bought.data).purchase_id,
                refund_id=uuid.uuid4(),
                amount=Decimal("5000.00"),
                currency="CNY",
                refunded_at=NOW,
                fully_refunded=True,
            ),
            source="/tests",
        )
        await consumer.process(records([bought, refund]))
        async with app.state.runtime.db.read() as session:
            segment = await session.get(CustomerSegment, customer)
            [ledger] = (await session.scalars(sa.select(Purchase))).all()
            assert segment is not None and (segment.lifetime_frequency, segment.monetary_minor) == (0, 0)
            span = (segment.purchase_days, segment.first_purchase_at, segment.last_purchase_at)
            assert span == (0, None, None)
            assert ledger.fully_refunded and ledger.amount_minor == 0
    finally:
        await app.state.runtime.db.dispose()


async def test_the_same_purchases_give_the_same_fit_at_every_recompute(databases: Databases) -> None:
    """The model's fit samples buyers with a fixed seed: recomputing changes nothing if nothing changed."""
    rng = random.Random(5)
    history = [
        purchase(customer, "100.00", rng.uniform(0, 700))
        for customer in (uuid.uuid4() for _ in range(400))
        for _ in range(rng.randint(1, 5))
    ]
    app, consumer = await service(databases, bulk=True)
    manager = auth(Role.manager)
    document = DEFAULT_POLICY.model_dump(mode="json")
    document["bgnbd"]["sample_size"] = 200  # fewer than the buyers: the sample matters
    try:
        await consumer.process(records(history))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://seg") as client:
            stored = await client.put("/policy", json={"policy": document}, headers=manager)
            assert stored.status_code == 201, stored.text
            await client.post(f"/policy/versions/{stored.json()['version']}/apply", headers=manager)
            fits = []
            for _ in range(3):
                assert (await client.post("/cut-points/recompute", headers=manager)).status_code == 200
                fits.append((await client.get("/cut-points", headers=manager)).json()["bgnbd"])
    finally:
        await app.state.runtime.db.dispose()
    assert fits[0] is not None and fits[0]["model"] == DEFAULT_POLICY.bgnbd.model.value
    names = [name for name in ("r", "alpha", "a", "b", "s", "beta") if name in fits[0]]
    assert len(names) == 4
    for fit in fits[1:]:
        assert np.allclose([fit[n] for n in names], [fits[0][n] for n in names], rtol=1e-4), (fits[0], fit)


async def test_a_customers_history_lists_the_moves_of_one_batch_in_the_order_they_were_made(
    databases: Databases,
) -> None:
    # Every move of a batch is recorded at the same moment (the clock stands still here, and the
    # set-based path reads it once per batch); the history must still list them as they were made.
    customer = uuid.uuid4()
    batch = [purchase(customer, "1000.00", 1) for _ in range(60)]  # iron, then gold, then platinum
    for bulk in (True, False):
        app, consumer = await service(databases, bulk=bulk)
        try:
            await consumer.process(records(batch))
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://seg"
            ) as client:
                found = await client.get(
                    f"/segments/{customer}/history", params={"limit": 200}, headers=auth()
                )
            assert found.status_code == 200, found.text
            changes = found.json()["items"]
            assert [c["tier"] for c in changes if "tier" in c["changed"]] == ["iron", "gold", "platinum"]
            made = [str(envelope.id) for envelope in batch]
            causes = [made.index(c["cause_event_id"]) for c in changes]
            assert causes == sorted(causes), (bulk, causes)
        finally:
            await app.state.runtime.db.dispose()
