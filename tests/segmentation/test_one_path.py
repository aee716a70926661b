"""One code path: events applied one per batch, in one batch or in any chunking, leave the same rows.

The staged events too: the same types and payloads in the same order per customer.

A property test over random sequences of every event type segmentation handles, over a few
customers (so that one customer's events interleave with another's, refunds name earlier
purchases, merges and erasures land between purchases).
"""

from __future__ import annotations

import itertools
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import orjson
import sqlalchemy as sa
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st

from services.segmentation.models import BehaviourSignal, CustomerSegment, Purchase, TierChange
from shared.events import REGISTRY, Envelope, Event, envelope_for
from shared.messaging import outbox_message
from tests.harness import Databases
from tests.segmentation.test_bulk import NOW, service
from tests.shared.event_examples import FIELDS

CUSTOMERS = [uuid.UUID(int=n) for n in range(1, 4)]
PURCHASES = [uuid.UUID(int=1000 + n) for n in range(12)]


def event(event_type: str, customer: uuid.UUID, **fields: Any) -> Envelope[Event]:
    data = REGISTRY[event_type].model_validate({"customer_id": customer, **FIELDS[event_type], **fields})
    return envelope_for(data, source="/tests")


customers = st.sampled_from(CUSTOMERS)
# Whole days and a few hours: purchases often share a day (the purchase-days count), some fall
# out of the window.
moments = st.builds(
    lambda days, hours: NOW - timedelta(days=days, hours=hours),
    st.sampled_from([0, 1, 30, 400, 800]),
    st.sampled_from([0, 3, 7]),
)
amounts = st.integers(min_value=1, max_value=2_000_000).map(lambda cents: Decimal(cents) / 100)
# Each purchase id is drawn from a small pool: the test keeps the first use and turns the rest into
# refunds of it, so that refunds name purchases the ledger holds (and some it never saw).
purchases = st.tuples(
    st.just("csm.purchase.recorded.v1"),
    customers,
    st.fixed_dictionaries(
        {
            "purchase_id": st.sampled_from(PURCHASES),
            "amount": amounts,
            "purchased_at": moments,
            "imported": st.booleans(),
        }
    ),
)
# Purchases are what segmentation sees most of; the other types come between them.
steps = st.one_of(
    purchases,
    purchases,
    purchases,
    st.tuples(st.just("csm.customer.registered.v1"), customers, st.just({})),
    st.tuples(
        st.just("csm.purchase.refunded.v1"),
        customers,
        st.fixed_dictionaries(
            {
                "purchase_id": st.sampled_from(PURCHASES),
                "refund_id": st.uuids(),
                "amount": amounts,
                "fully_refunded": st.booleans(),
            }
        ),
    ),
    st.tuples(
        st.just("csm.complaint.opened.v1"),
        customers,
        st.fixed_dictionaries(
            {"severity": st.sampled_from(["low", "normal", "high", "critical"]), "opened_at": moments}
        ),
    ),
    st.tuples(
        st.just("csm.complaint.resolved.v1"),
        customers,
        st.fixed_dictionaries({"within_sla": st.booleans(), "resolved_at": moments}),
    ),
    st.tuples(
        st.just("csm.complaint.survey_answered.v1"),
        customers,
        st.fixed_dictionaries(
            {
                "csat": st.integers(1, 5),
                "nps": st.none() | st.integers(0, 10),
                "poor": st.booleans(),
                "answered_at": moments,
            }
        ),
    ),
    st.tuples(
        st.just("csm.interaction.logged.v1"),
        customers,
        st.fixed_dictionaries(
            {
                "sentiment": st.sampled_from([None, "positive", "neutral", "negative"]),
                "signal": st.sampled_from(
                    [None, "late_payment", "rude_to_staff", "usage_drop", "cancellation_request"]
                ),
                "occurred_at": moments,
            }
        ),
    ),
    st.tuples(st.just("csm.customer.merged.v1"), customers, st.fixed_dictionaries({"merged_id": customers})),
    st.tuples(st.just("csm.customer.erased.v1"), customers, st.just({})),
)


def build(drawn: list[tuple[str, uuid.UUID, dict[str, Any]]]) -> list[Envelope[Event]]:
    """The drawn steps as events; a purchase id already used makes a refund of that purchase."""
    bought: set[uuid.UUID] = set()
    events = []
    for event_type, customer, fields in drawn:
        if event_type == "csm.purchase.recorded.v1" and fields["purchase_id"] in bought:
            continue
        if event_type == "csm.purchase.recorded.v1":
            bought.add(fields["purchase_id"])
        if event_type == "csm.customer.merged.v1" and fields["merged_id"] == customer:
            continue
        events.append(event(event_type, customer, **fields))
    return events


async def left_by(app: FastAPI) -> dict[str, Any]:
    """Every row and staged event, in the order made per customer, without ids drawn at random."""
    async with app.state.runtime.db.read() as session:

        async def rows(table: sa.Table, order: list[Any], drop: tuple[str, ...] = ()) -> list[dict[str, Any]]:
            found = await session.execute(sa.select(table).order_by(*order))
            return [{k: v for k, v in r._mapping.items() if k not in drop} for r in found]

        segment, purchase = CustomerSegment.__table__, Purchase.__table__
        signal, history = BehaviourSignal.__table__, TierChange.__table__
        events: dict[str, list[tuple[str, Any]]] = {}
        for row in await session.execute(sa.select(outbox_message).order_by(outbox_message.c.seq)):
            data = orjson.loads(row.body)["data"]
            events.setdefault(row.key, []).append((row.event_type, data))
        return {
            "segments": await rows(segment, [segment.c.customer_id]),
            "purchases": await rows(purchase, [purchase.c.purchase_id]),
            "signals": await rows(
                signal, [signal.c.customer_id, signal.c.cause_event_id, signal.c.kind], drop=("id",)
            ),
            # Ids of history rows are time-ordered: within a customer they list the changes as made.
            "history": await rows(history, [history.c.customer_id, history.c.id], drop=("id",)),
            "events": events,
        }


async def applied(
    databases: Databases, events: list[Envelope[Event]], cuts: list[int] | None
) -> dict[str, Any]:
    """What applying ``events`` leaves: each through its type's handler in a transaction of its own
    (``cuts`` None), or in batches cut at ``cuts`` through ``apply_batch``.

    Called as the consumer calls them, but without its fallback (a batch that fails is applied
    one event at a time), which would hide a batch that cannot be applied.
    """
    app, consumer = await service(databases, bulk=True)
    db = app.state.runtime.db
    try:
        if cuts is None:
            for envelope in events:
                async with db.unit_of_work() as session:
                    await consumer.handlers[envelope.type](envelope, session=session)
        else:
            assert consumer.apply_batch is not None
            bounds = [0, *sorted(set(cuts)), len(events)]
            for start, end in itertools.pairwise(bounds):
                if start < end:
                    async with db.unit_of_work() as session:
                        assert await consumer.apply_batch(events[start:end], session=session)
        return await left_by(app)
    finally:
        await db.dispose()


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    # Each example makes three databases: shrinking a failure takes minutes; the example is noted instead.
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(drawn=st.lists(steps, min_size=6, max_size=40), data=st.data())
async def test_single_events_a_whole_batch_and_any_chunking_leave_the_same_rows_and_events(
    databases: Databases, drawn: list[tuple[str, uuid.UUID, dict[str, Any]]], data: st.DataObject
) -> None:
    events = build(drawn)
    if not events:
        return
    note("\n".join(f"{e.type} {e.data.model_dump_json()}" for e in events))
    one_by_one = await applied(databases, events, None)
    at_once = await applied(databases, events, [])
    assert at_once == one_by_one
    cuts = data.draw(st.lists(st.integers(1, max(1, len(events) - 1)), max_size=5), label="cuts")
    assert await applied(databases, events, cuts) == one_by_one
