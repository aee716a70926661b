"""Events complaints follows, on the real broker: tier changes re-target open complaints, erasure
purges, merging moves complaints to the survivor, and other systems' complaints arrive by event."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest

from shared.clock import ManualClock
from shared.events import dead_letter_topic, envelope_for
from shared.events.complaints import INTAKE_TOPIC, ComplaintSubmitted
from shared.events.customer import TOPIC as CUSTOMER_TOPIC
from shared.events.customer import CustomerErased, CustomerMerged
from shared.events.segmentation import TOPIC as SEGMENTATION_TOPIC
from shared.events.segmentation import Tier, TierChanged
from tests.complaints.helpers import TUESDAY_10_SHANGHAI, move, open_complaint, staff, staged
from tests.harness import RunningService, Stack, eventually
from tests.shared.bus_helpers import produce, produce_events, read_all

T0 = TUESDAY_10_SHANGHAI


@pytest.fixture
async def complaints(stack: Stack) -> RunningService:
    # The scanner is slowed right down: these tests are about the consumers.
    return await stack.start("complaints", clock=ManualClock(T0), scan_interval_seconds=3600)


def tier_changed(customer_id: uuid.UUID, tier: Tier, *, key_account: bool = False) -> Any:
    return envelope_for(
        TierChanged(
            customer_id=customer_id,
            previous_tier=None,
            tier=tier,
            key_account=key_account,
            reason="test",
            policy_version=1,
            changed_at=T0,
        ),
        source="/tests",
    )


async def get(complaints: RunningService, complaint_id: str) -> dict[str, Any]:
    response = await complaints.client.get(f"/complaints/{complaint_id}", headers=staff())
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


async def test_a_tier_that_arrives_later_retargets_open_complaints_at_once(
    stack: Stack, complaints: RunningService
) -> None:
    customer = uuid.uuid4()
    unknown = await open_complaint(complaints, customer_id=customer)
    closed = await open_complaint(complaints, customer_id=customer)
    await move(complaints, closed["id"], "acknowledged")
    await complaints.client.post(
        f"/complaints/{closed['id']}/resolution",
        json={"summary": "done", "root_cause": "other"},
        headers=staff(),
    )
    assert unknown["clocks"][0]["due_at"] == "2026-11-24T06:00:00Z"  # the default: 4 business hours

    await produce_events(
        stack.bootstrap, stack.prefix + SEGMENTATION_TOPIC, [tier_changed(customer, Tier.gold)]
    )

    async def retargeted() -> None:
        current = await get(complaints, unknown["id"])
        assert current["tier"] == "gold"
        assert current["clocks"][0]["due_at"] == "2026-11-24T04:00:00Z"  # gold: 2 hours from the opening

    await eventually(retargeted)
    [announced] = [
        json.loads(body)["data"] for kind, body in await staged(complaints) if "retargeted" in kind
    ]
    assert (announced["complaint_id"], announced["previous_tier"], announced["tier"]) == (
        unknown["id"],
        None,
        "gold",
    )
    assert announced["first_response_due_at"] == "2026-11-24T04:00:00Z"
    assert (await get(complaints, closed["id"]))["tier"] is None  # a resolved complaint keeps its promise
    upgraded = await open_complaint(complaints, customer_id=customer)
    assert upgraded["tier"] == "gold"
    # A key account from platinum down: the tighter promise, and the top rung of the ladder.
    await produce_events(
        stack.bootstrap,
        stack.prefix + SEGMENTATION_TOPIC,
        [tier_changed(customer, Tier.platinum, key_account=True)],
    )

    async def platinum() -> None:
        current = await get(complaints, unknown["id"])
        assert (current["tier"], current["key_account"]) == ("platinum", True)
        assert current["clocks"][0]["due_at"] == "2026-11-24T03:00:00Z"

    await eventually(platinum)


async def test_erasure_purges_what_describes_the_person_and_stops_the_clocks(
    stack: Stack, complaints: RunningService
) -> None:
    customer, bystander = uuid.uuid4(), uuid.uuid4()
    complaint = await open_complaint(
        complaints,
        customer_id=customer,
        description="Li Na at 12 Garden Road was overcharged",
        desired_outcome="Call me on 13812345678",
        attachments=[{"uri": "https://files.example.com/id-card.jpg"}],
        headers={**staff(), "Idempotency-Key": "erase-me"},
    )
    await produce_events(
        stack.bootstrap, stack.prefix + SEGMENTATION_TOPIC, [tier_changed(customer, Tier.gold)]
    )

    async def gold() -> None:
        assert (await get(complaints, complaint["id"]))["tier"] == "gold"

    await eventually(gold)
    other = await open_complaint(complaints, customer_id=bystander)
    erased = envelope_for(CustomerErased(customer_id=customer, erased_at=T0), source="/tests")
    await produce_events(stack.bootstrap, stack.prefix + CUSTOMER_TOPIC, [erased])

    async def purged() -> None:
        current = await get(complaints, complaint["id"])
        assert (current["description"], current["desired_outcome"], current["attachments"]) == ("", None, [])
        assert current["status"] == "closed"

    await eventually(purged)
    current = await get(complaints, complaint["id"])
    assert all(clock["due_at"] is None for clock in current["clocks"])
    assert (await get(complaints, other["id"]))["description"] == "The parcel arrived a week late."
    # The erased person's tier is forgotten, and so is the Idempotency-Key of their complaint.
    again = await open_complaint(
        complaints,
        customer_id=customer,
        description="Li Na at 12 Garden Road was overcharged",
        desired_outcome="Call me on 13812345678",
        attachments=[{"uri": "https://files.example.com/id-card.jpg"}],
        headers={**staff(), "Idempotency-Key": "erase-me"},
    )
    assert again["id"] != complaint["id"] and again["tier"] is None


async def test_a_merge_moves_complaints_to_the_survivor_and_its_tier(
    stack: Stack, complaints: RunningService
) -> None:
    survivor, duplicate = uuid.uuid4(), uuid.uuid4()
    await produce_events(
        stack.bootstrap, stack.prefix + SEGMENTATION_TOPIC, [tier_changed(survivor, Tier.gold)]
    )
    complaint = await open_complaint(complaints, customer_id=duplicate)
    merged = envelope_for(
        CustomerMerged(customer_id=survivor, merged_id=duplicate, merged_at=T0), source="/tests"
    )
    await produce_events(stack.bootstrap, stack.prefix + CUSTOMER_TOPIC, [merged])

    async def moved() -> None:
        current = await get(complaints, complaint["id"])
        assert (current["customer_id"], current["tier"]) == (str(survivor), "gold")

    await eventually(moved)
    listed = await complaints.client.get(
        "/complaints", params={"customer_id": str(survivor)}, headers=staff()
    )
    assert [item["id"] for item in listed.json()["items"]] == [complaint["id"]]


async def test_other_systems_hand_over_complaints_by_event_once(
    stack: Stack, complaints: RunningService
) -> None:
    customer, submission = uuid.uuid4(), uuid.uuid4()
    submitted = ComplaintSubmitted(
        customer_id=customer,
        submission_id=submission,
        channel="web",
        category="billing",
        severity="high",
        description="Charged twice for order SO-9",
        desired_outcome="Refund",
        visit_required=False,
        received_by="agent-5",
        submitted_at=T0 - timedelta(minutes=30),
    )
    twice = [envelope_for(submitted, source="/erp/web-portal") for _ in range(2)]
    await produce_events(stack.bootstrap, stack.prefix + INTAKE_TOPIC, twice)
    await produce(stack.bootstrap, stack.prefix + INTAKE_TOPIC, [(str(customer), b'{"not": "an event"}')])

    async def taken() -> dict[str, Any]:
        return await get(complaints, str(submission))

    complaint = await eventually(taken)
    assert (complaint["first_owner"], complaint["source"], complaint["channel"]) == (
        "agent-5",
        "/erp/web-portal",
        "web",
    )
    # The promise runs from when the customer complained to the other system.
    assert complaint["opened_at"] == "2026-11-24T01:30:00Z"
    dead = await read_all(stack.bootstrap, stack.prefix + dead_letter_topic("complaints"), expect=1)
    assert len(dead) == 1
    opened = [
        json.loads(body)["data"] for kind, body in await staged(complaints) if kind.endswith("opened.v1")
    ]
    assert [event["complaint_id"] for event in opened] == [str(submission)]
