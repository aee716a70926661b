"""The 360 view keeps its own projections from other services' events, produced here onto the real broker."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.events import Envelope, Event, envelope_for
from shared.events.complaints import TOPIC as COMPLAINTS
from shared.events.notify import TOPIC as NOTIFY
from shared.events.segmentation import TOPIC as SEGMENTATION
from tests.customer.helpers import register
from tests.harness import Stack, auth, eventually
from tests.shared.bus_helpers import produce_events
from tests.shared.event_examples import example

MOMENT = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)


def event(event_type: str, customer_id: str, **changes: Any) -> Envelope[Event]:
    payload = example(event_type, uuid.UUID(customer_id), **changes)
    return envelope_for(payload, source="/tests")


async def publish(stack: Stack, topic: str, *envelopes: Envelope[Event]) -> None:
    await produce_events(stack.bootstrap, stack.prefix + topic, list(envelopes))


async def view_of(stack: Stack, customer_id: str) -> dict[str, Any]:
    response = await stack["customer"].client.get(f"/customers/{customer_id}/360", headers=auth())
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


@pytest.fixture
async def customers(stack: Stack) -> Stack:
    await stack.start("customer")
    return stack


async def test_tier_segment_stage_key_account_and_risk_come_from_segmentation_events(
    customers: Stack,
) -> None:
    customer = await register(customers)
    cid = customer["id"]
    await publish(
        customers,
        SEGMENTATION,
        event(
            "csm.segment.tier_changed.v1",
            cid,
            tier="gold",
            key_account=True,
            segment="A",
            value_group="high_value",
            stage="repeat_buyer",
            changed_at=MOMENT,
        ),
        event(
            "csm.segment.risk_changed.v1",
            cid,
            risk="at_risk",
            probability_alive=0.4,
            expected_purchases=1.25,
            expected_purchases_days=90,
            changed_at=MOMENT,
        ),
        # Older than what is known: must not win.
        event("csm.segment.tier_changed.v1", cid, tier="iron", changed_at=MOMENT - timedelta(days=1)),
    )

    async def standing() -> dict[str, Any]:
        found = (await view_of(customers, cid))["standing"]
        assert found["churn_risk"] == "at_risk"
        return found  # type: ignore[no-any-return]

    found = await eventually(standing)
    assert found | {"tier_changed_at": None, "risk_changed_at": None} == {
        "tier": "gold",
        "segment": "A",
        "value_group": "high_value",
        "loyalty_stage": "repeat_buyer",
        "key_account": True,
        "churn_risk": "at_risk",
        "probability_alive": 0.4,
        "expected_purchases": 1.25,
        "expected_purchases_days": 90,
        "tier_changed_at": None,
        "risk_changed_at": None,
    }
    assert (await view_of(customers, cid))["customer"]["tier"] == "gold"
    found_by_tier = await customers["customer"].client.get(
        "/customers", params={"tier": "gold"}, headers=auth()
    )
    assert [c["id"] for c in found_by_tier.json()["items"]] == [cid]


async def test_open_complaints_follow_the_complaint_lifecycle(customers: Stack) -> None:
    cid = (await register(customers))["id"]
    first, second = uuid.uuid4(), uuid.uuid4()
    await publish(
        customers,
        COMPLAINTS,
        event("csm.complaint.opened.v1", cid, complaint_id=first, opened_at=MOMENT),
        event(
            "csm.complaint.opened.v1",
            cid,
            complaint_id=second,
            category="billing",
            opened_at=MOMENT + timedelta(minutes=5),
        ),
        event(
            "csm.complaint.status_changed.v1",
            cid,
            complaint_id=first,
            status="in_progress",
            changed_at=MOMENT + timedelta(minutes=10),
        ),
        event("csm.complaint.resolved.v1", cid, complaint_id=second, resolved_at=MOMENT + timedelta(hours=1)),
    )

    async def open_ones() -> list[dict[str, Any]]:
        complaints = (await view_of(customers, cid))["open_complaints"]
        assert [c["id"] for c in complaints] == [str(first)]
        return complaints  # type: ignore[no-any-return]

    [complaint] = await eventually(open_ones)
    assert (complaint["status"], complaint["category"], complaint["first_owner"]) == (
        "in_progress",
        "delivery",
        "agent-1",
    )
    await publish(
        customers,
        COMPLAINTS,
        event("csm.complaint.reopened.v1", cid, complaint_id=second, reopened_at=MOMENT + timedelta(days=1)),
        event(
            "csm.complaint.status_changed.v1",
            cid,
            complaint_id=first,
            status="closed",
            changed_at=MOMENT + timedelta(days=1),
        ),
    )

    async def reopened() -> None:
        complaints = (await view_of(customers, cid))["open_complaints"]
        assert [(c["id"], c["status"]) for c in complaints] == [(str(second), "reopened")]

    await eventually(reopened)


async def test_recent_notifications_are_kept_newest_first_and_bounded(stack: Stack) -> None:
    await stack.start("customer", notifications_kept=3, view_recent_notifications=2)
    cid = (await register(stack))["id"]
    sent = [
        event(
            "csm.notification.sent.v1",
            cid,
            notification_id=uuid.uuid4(),
            playbook=f"p{n}",
            sent_at=MOMENT + timedelta(minutes=n),
        )
        for n in range(5)
    ]
    await publish(stack, NOTIFY, *sent, sent[4])

    async def newest() -> None:
        assert [n["playbook"] for n in (await view_of(stack, cid))["recent_notifications"]] == ["p4", "p3"]

    await eventually(newest)
    import sqlalchemy as sa

    from services.customer.models import NotificationView
    from shared.db import Database

    db = Database(stack["customer"].database_url)
    try:
        async with db.read() as session:
            kept = (
                await session.scalars(sa.select(NotificationView.playbook).order_by(NotificationView.sent_at))
            ).all()
    finally:
        await db.dispose()
    assert kept == ["p2", "p3", "p4"]


async def test_the_view_answers_404_for_unknown_erased_and_merged_customers(customers: Stack) -> None:
    client = customers["customer"].client
    unknown = await client.get(f"/customers/{uuid.uuid4()}/360", headers=auth())
    assert unknown.status_code == 404 and unknown.headers["content-type"] == "application/problem+json"
    view = await view_of(customers, (await register(customers))["id"])
    assert set(view) == {
        "customer",
        "standing",
        "totals",
        "contacts",
        "contact_warning",
        "recent_purchases",
        "open_complaints",
        "recent_notifications",
        "recent_interactions",
        "interests",
        "consents",
    }


async def test_late_events_about_merged_erased_or_unknown_customers_go_where_they_belong(
    customers: Stack,
) -> None:
    from shared.roles import Role

    client = customers["customer"].client
    survivor, duplicate, erased = [(await register(customers))["id"] for _ in range(3)]
    merged = await client.post(
        f"/customers/{survivor}/merge", json={"duplicate_id": duplicate}, headers=auth(Role.supervisor)
    )
    assert merged.status_code == 200
    assert (await client.delete(f"/customers/{erased}", headers=auth(Role.admin))).status_code == 204
    unknown = str(uuid.uuid4())
    for_unknown, for_erased = uuid.uuid4(), uuid.uuid4()
    await publish(
        customers,
        SEGMENTATION,
        event("csm.segment.tier_changed.v1", survivor, tier="iron", changed_at=MOMENT),
    )

    async def applied() -> None:
        assert (await view_of(customers, survivor))["standing"]["tier"] == "iron"

    await eventually(applied)
    later = MOMENT + timedelta(hours=1)
    await publish(
        customers,
        SEGMENTATION,
        event("csm.segment.tier_changed.v1", duplicate, tier="platinum", changed_at=later),
    )
    await publish(
        customers,
        COMPLAINTS,
        event("csm.complaint.opened.v1", erased, complaint_id=for_erased, opened_at=MOMENT),
        event("csm.complaint.opened.v1", unknown, complaint_id=for_unknown, opened_at=MOMENT),
    )
    metrics = customers["customer"].runtime.metrics

    async def consumed() -> None:
        assert metrics.events_consumed.labels("customer", "csm.segment.tier_changed.v1")._value.get() == 2
        assert metrics.events_consumed.labels("customer", "csm.complaint.opened.v1")._value.get() == 2

    await eventually(consumed)
    assert (await view_of(customers, survivor))["standing"]["tier"] == "iron"
    import sqlalchemy as sa

    from services.customer.models import ComplaintView
    from shared.db import Database

    db = Database(customers["customer"].database_url)
    try:
        async with db.read() as session:
            kept = (
                await session.execute(sa.select(ComplaintView.complaint_id, ComplaintView.customer_id))
            ).all()
    finally:
        await db.dispose()
    # The duplicate's verdict is not carried over (segmentation re-tiers the survivor); the erased
    # customer's complaint is not kept; one about a customer not (yet) known here is.
    assert [(str(c), str(o)) for c, o in kept] == [(str(for_unknown), unknown)]
