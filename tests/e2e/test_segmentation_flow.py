"""A purchase, a complaint and a refund each move a prepared customer between tiers, on the real broker."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

import orjson
import pytest

from services.segmentation.policy import DEFAULT_POLICY
from shared.clock import ManualClock
from shared.events import envelope_for
from shared.events.customer import PurchaseRecorded, PurchaseRefunded
from shared.roles import Role
from tests.harness import Stack, auth, eventually
from tests.shared.bus_helpers import produce_events, purchase, read_all
from tests.shared.event_examples import example

pytestmark = pytest.mark.e2e
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


async def test_purchase_complaint_and_refund_each_move_the_tier_and_announce_it(stack: Stack) -> None:
    clock = ManualClock(NOW)
    seg = await stack.start("segmentation", clock=clock)
    manager = auth(Role.manager, subject="boss")
    # The prepared policy: gold needs 10,000 and low risk, so behaviour can cost a customer gold.
    document = DEFAULT_POLICY.model_dump(mode="json")
    document["tier_rules"] = [
        {"tier": "gold", "min_monetary": "10000", "risks": ["low"]},
        {"tier": "iron", "min_monetary": "1000"},
        {"tier": "lead"},
    ]
    stored = await seg.client.put(
        "/policy", json={"policy": document, "note": "gold needs low risk"}, headers=manager
    )
    assert stored.status_code == 201, stored.text
    applied = await seg.client.post(f"/policy/versions/{stored.json()['version']}/apply", headers=manager)
    assert applied.status_code == 200, applied.text

    customer_id = uuid.uuid4()
    topic_in = stack.prefix + "csm.customer"
    bought = purchase(customer_id, amount="12000.00")
    await produce_events(stack.bootstrap, topic_in, [bought])

    async def tier_is(tier: str) -> dict[str, Any]:
        found = await seg.client.get(f"/segments/{customer_id}", headers=auth())
        assert found.status_code == 200 and found.json()["tier"] == tier, found.text
        return found.json()  # type: ignore[no-any-return]

    segment = await eventually(lambda: tier_is("gold"))
    assert segment["stage"] == "first_time_buyer" and segment["policy_version"] == stored.json()["version"]

    clock.advance(timedelta(minutes=1))
    complaint = envelope_for(
        example("csm.complaint.opened.v1", customer_id, severity="critical"),
        source="/tests",
    )
    await produce_events(stack.bootstrap, stack.prefix + "csm.complaints", [complaint])
    segment = await eventually(lambda: tier_is("iron"))
    assert segment["risk"] == "at_risk" and segment["signal_points"] == 2.0

    clock.advance(timedelta(minutes=1))
    refund = envelope_for(
        PurchaseRefunded(
            customer_id=customer_id,
            purchase_id=cast(PurchaseRecorded, bought.data).purchase_id,
            refund_id=uuid.uuid4(),
            amount=Decimal("11500.00"),
            currency="CNY",
            refunded_at=NOW,
            fully_refunded=False,
        ),
        source="/tests",
    )
    await produce_events(stack.bootstrap, topic_in, [refund])
    segment = await eventually(lambda: tier_is("lead"))
    assert segment["figures"]["monetary"] == "500.00"

    records = await read_all(stack.bootstrap, stack.prefix + "csm.segmentation", expect=4)
    events = [orjson.loads(r.value) for r in records if r.key == str(customer_id).encode()]
    moves = [
        (e["data"]["previous_tier"], e["data"]["tier"], e["data"]["cause_event_id"])
        for e in events
        if e["type"] == "csm.segment.tier_changed.v1"
    ]
    assert moves == [
        ("lead", "gold", str(bought.id)),
        ("gold", "iron", str(complaint.id)),
        ("iron", "lead", str(refund.id)),
    ]
    [risk] = [e["data"] for e in events if e["type"] == "csm.segment.risk_changed.v1"]
    assert (risk["previous_risk"], risk["risk"], risk["cause_event_id"]) == (
        "low",
        "at_risk",
        str(complaint.id),
    )

    history = (await seg.client.get(f"/segments/{customer_id}/history", headers=auth())).json()["items"]
    assert [(h["tier"], h["cause_event_id"]) for h in history] == [
        ("gold", str(bought.id)),
        ("iron", str(complaint.id)),
        ("lead", str(refund.id)),
    ]


async def test_a_move_caused_by_imported_history_says_so(stack: Stack) -> None:
    await stack.start("segmentation", clock=ManualClock(NOW))
    migrated, live = uuid.uuid4(), uuid.uuid4()
    old = purchase(migrated, amount="12000.00")
    old = old.model_copy(update={"data": old.data.model_copy(update={"imported": True})})
    await produce_events(
        stack.bootstrap, stack.prefix + "csm.customer", [old, purchase(live, amount="12000.00")]
    )

    records = await read_all(stack.bootstrap, stack.prefix + "csm.segmentation", expect=2)
    imported = {
        orjson.loads(r.value)["data"]["customer_id"]: orjson.loads(r.value)["data"]["imported"]
        for r in records
    }
    assert imported == {str(migrated): True, str(live): False}
