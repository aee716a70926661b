"""A gold customer's complaint across the services on the real broker: acknowledged on the gold
promise, warned, breached and escalated as a controllable clock moves, with the events on the
topic; and a compensation above an agent's limit that waits for a supervisor."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.clock import ManualClock
from shared.events.complaints import TOPIC as COMPLAINTS_TOPIC
from shared.roles import Role
from tests.harness import Stack, auth, eventually
from tests.shared.bus_helpers import read_all

pytestmark = pytest.mark.e2e


def at_minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


async def test_a_gold_complaint_breaches_escalates_and_its_compensation_waits_for_approval(
    stack: Stack,
) -> None:
    opened_at = at_minute(datetime.now(UTC))
    clock = ManualClock(opened_at)
    await stack.start("customer")
    await stack.start("segmentation")
    complaints = await stack.start("complaints", clock=clock, scan_interval_seconds=0.05)
    await stack.start("notify")

    registered = await stack["customer"].client.post("/customers", json={"name": "Wang Fang"}, headers=auth())
    customer_id = registered.json()["id"]
    bought = await stack["customer"].client.post(
        f"/customers/{customer_id}/purchases",
        json={"order_id": "SO-2001", "amount": "15000.00", "currency": "CNY"},
        headers=auth(),
    )
    assert bought.status_code == 201

    # Taken at once, whether or not the tier has reached complaints yet: it re-targets when it does.
    agent = auth(Role.agent, subject="agent-42")
    response = await complaints.client.post(
        "/complaints",
        json={
            "customer_id": customer_id,
            "channel": "phone",
            "category": "product_quality",
            "severity": "normal",
            "description": "The washing machine leaks.",
        },
        headers=agent,
    )
    assert response.status_code == 201, response.text
    complaint_id = response.json()["id"]

    async def on_the_gold_promise() -> dict[str, Any]:
        found = (await complaints.client.get(f"/complaints/{complaint_id}", headers=agent)).json()
        assert found["tier"] == "gold"
        return found  # type: ignore[no-any-return]

    complaint = await eventually(on_the_gold_promise)
    first_response = complaint["clocks"][0]
    assert first_response["target"] == "first_response"
    assert datetime.fromisoformat(first_response["due_at"]) == opened_at + timedelta(hours=2)

    async def acknowledged_to_the_customer() -> None:
        found = await stack["notify"].client.get(
            "/notifications", params={"customer_id": customer_id}, headers=auth()
        )
        about = [
            f"{item.get('playbook', '')} {item.get('title', '')}".lower() for item in found.json()["items"]
        ]
        assert any("complaint" in text for text in about), about

    await eventually(acknowledged_to_the_customer)

    clock.set(opened_at + timedelta(minutes=91))
    clock_moved_events = ["csm.complaint.sla_warning.v1"]

    async def events_of_the_complaint(expected: list[str]) -> list[dict[str, Any]]:
        records = await read_all(stack.bootstrap, stack.prefix + COMPLAINTS_TOPIC, expect=1, timeout_ms=1_000)
        mine = [json.loads(record.value) for record in records]
        mine = [event for event in mine if event["data"]["complaint_id"] == complaint_id]
        types = [event["type"] for event in mine]
        assert [t for t in types if t in expected] == expected, types
        return mine

    await eventually(lambda: events_of_the_complaint(clock_moved_events))
    clock.set(opened_at + timedelta(hours=2, minutes=1))
    expected = [
        "csm.complaint.opened.v1",
        *clock_moved_events,
        "csm.complaint.sla_breached.v1",
        "csm.complaint.escalated.v1",
    ]
    events = await eventually(lambda: events_of_the_complaint(expected))
    by_type = {event["type"]: event["data"] for event in events}
    breached = by_type["csm.complaint.sla_breached.v1"]
    assert (breached["target"], breached["tier"], breached["first_owner"]) == (
        "first_response",
        "gold",
        "agent-42",
    )
    assert datetime.fromisoformat(breached["due_at"]) == opened_at + timedelta(hours=2)
    # What the complaints dashboard and the CsmSlaBreaches alert read.
    metrics = (await complaints.client.get("/metrics")).text
    for line in ("csm_sla_warnings_total 1.0", "csm_sla_breaches_total 1.0", "csm_escalations_total 1.0"):
        assert line in metrics.splitlines(), line
    escalated = by_type["csm.complaint.escalated.v1"]
    assert (escalated["level_name"], escalated["must_act"], escalated["first_owner"]) == (
        "supervisor",
        "supervisor",
        "agent-42",
    )

    offered = await complaints.client.post(
        f"/complaints/{complaint_id}/compensations",
        json={"amount": "500.00", "currency": "CNY", "reason": "a week without a washing machine"},
        headers=agent,
    )
    assert offered.status_code == 201
    assert (offered.json()["status"], offered.json()["requires_role"]) == ("pending", "supervisor")
    compensation_id = offered.json()["id"]
    refused = await complaints.client.post(
        f"/compensations/{compensation_id}/decision", json={"approve": True}, headers=agent
    )
    assert refused.status_code == 403
    approved = await complaints.client.post(
        f"/compensations/{compensation_id}/decision",
        json={"approve": True},
        headers=auth(Role.supervisor, subject="supervisor-1"),
    )
    assert approved.status_code == 200 and approved.json()["status"] == "granted"
    current = (await complaints.client.get(f"/complaints/{complaint_id}", headers=agent)).json()
    assert current["compensation"] == "500.00" and current["first_owner"] == "agent-42"
