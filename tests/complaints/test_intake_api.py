"""Taking complaints over HTTP: the first owner, the promise in complaint.opened, Idempotency-Key,
bad input, roles, and lists filtered by first owner."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest

from shared.clock import ManualClock
from shared.roles import Role
from tests.complaints.helpers import (
    TUESDAY_10_SHANGHAI,
    open_complaint,
    set_tier,
    staff,
    staged,
    staged_types,
)
from tests.harness import RunningService, Stack, auth, problem


@pytest.fixture
async def complaints(stack: Stack) -> RunningService:
    return await stack.start("complaints", clock=ManualClock(TUESDAY_10_SHANGHAI), run_workers=False)


async def test_the_receiver_is_first_owner_and_opened_carries_the_tiers_promise(
    complaints: RunningService,
) -> None:
    gold_customer = uuid.uuid4()
    await set_tier(complaints, gold_customer, "gold")
    complaint = await open_complaint(
        complaints,
        customer_id=gold_customer,
        headers=staff(subject="agent-7"),
        severity="high",
        desired_outcome="A replacement",
        attachments=[{"uri": "https://files.example.com/p.jpg", "name": "p.jpg"}],
    )
    assert complaint["first_owner"] == "agent-7" and complaint["status"] == "new"
    assert complaint["tier"] == "gold" and complaint["desired_outcome"] == "A replacement"
    assert complaint["attachments"] == [
        {"uri": "https://files.example.com/p.jpg", "name": "p.jpg", "media_type": None}
    ]
    clocks = {clock["target"]: clock for clock in complaint["clocks"]}
    assert clocks["first_response"]["due_at"] == "2026-11-24T04:00:00Z"  # gold: 2 hours, around the clock
    assert clocks["resolution"]["due_at"] == "2026-11-26T02:00:00Z"  # 48 hours
    [(event_type, body)] = await staged(complaints)
    assert event_type == "csm.complaint.opened.v1"
    opened = json.loads(body)["data"]
    assert opened["first_owner"] == "agent-7" and opened["tier"] == "gold"
    assert opened["first_response_due_at"] == "2026-11-24T04:00:00Z"
    assert opened["resolution_due_at"] == "2026-11-26T02:00:00Z"


async def test_an_unknown_customer_gets_the_default_promise(complaints: RunningService) -> None:
    complaint = await open_complaint(complaints)
    assert complaint["tier"] is None
    clocks = {clock["target"]: clock for clock in complaint["clocks"]}
    # The default: 4 business hours, Shanghai 09:00-18:00; Tuesday 10:00 -> 14:00 local.
    assert clocks["first_response"]["due_at"] == "2026-11-24T06:00:00Z"
    assert clocks["first_response"]["calendar"] == "business_hours"


async def test_a_visit_adds_the_on_site_promise(complaints: RunningService) -> None:
    customer = uuid.uuid4()
    await set_tier(complaints, customer, "gold")
    complaint = await open_complaint(complaints, customer_id=customer, visit_required=True)
    assert [clock["target"] for clock in complaint["clocks"]] == ["first_response", "on_site", "resolution"]
    assert complaint["clocks"][1]["due_at"] == "2026-11-25T02:00:00Z"  # gold: on site within 24 hours


async def test_an_idempotency_key_makes_a_retry_return_the_first_complaint(
    complaints: RunningService,
) -> None:
    body = {
        "customer_id": str(uuid.uuid4()),
        "channel": "app",
        "category": "billing",
        "description": "Charged twice",
    }
    headers = {**staff(Role.agent, "app-user"), "Idempotency-Key": "retry-1"}
    first = await complaints.client.post("/complaints", json=body, headers=headers)
    again = await complaints.client.post("/complaints", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    other_caller = await complaints.client.post(
        "/complaints", json=body, headers={**staff(Role.agent, "someone-else"), "Idempotency-Key": "retry-1"}
    )
    assert other_caller.status_code == 201 and other_caller.json()["id"] != first.json()["id"]
    changed = await complaints.client.post(
        "/complaints", json={**body, "description": "Other"}, headers=headers
    )
    assert changed.status_code == 422 and changed.json()["errors"][0]["field"] == "Idempotency-Key"
    assert await staged_types(complaints) == ["csm.complaint.opened.v1"] * 2


async def test_concurrent_retries_with_one_key_make_one_complaint(complaints: RunningService) -> None:
    body = {
        "customer_id": str(uuid.uuid4()),
        "channel": "app",
        "category": "billing",
        "description": "Charged twice",
    }
    headers = {**staff(), "Idempotency-Key": "burst"}
    responses = await asyncio.gather(
        *(complaints.client.post("/complaints", json=body, headers=headers) for _ in range(5))
    )
    assert sorted(response.status_code for response in responses) == [200, 200, 200, 200, 201]
    assert len({response.json()["id"] for response in responses}) == 1


BAD_INPUT: list[tuple[dict[str, object], str]] = [
    ({"channel": "pigeon"}, "channel"),
    ({"category": "weather"}, "category"),
    ({"severity": "apocalyptic"}, "severity"),
    ({"description": "   "}, "description"),
    ({"customer_id": "not-a-uuid"}, "customer_id"),
    ({"attachments": [{"name": "no uri"}]}, "attachments.0.uri"),
    ({"mood": "angry"}, "mood"),
    ({"received_by": "agent-9"}, "received_by"),
]


async def test_bad_input_is_a_422_naming_the_field(complaints: RunningService) -> None:
    for fields, field in BAD_INPUT:
        body = {
            "customer_id": str(uuid.uuid4()),
            "channel": "web",
            "category": "other",
            "description": "x",
            **fields,
        }
        response = await complaints.client.post("/complaints", json=body, headers=staff())
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert [error["field"] for error in response.json()["errors"]] == [field]
    assert await staged_types(complaints) == []


async def test_a_system_names_the_staff_member_who_received_the_complaint(complaints: RunningService) -> None:
    complaint = await open_complaint(
        complaints, headers=auth(Role.service, "call-centre"), received_by="agent-3"
    )
    assert complaint["first_owner"] == "agent-3"
    from_system = await open_complaint(complaints, headers=auth(Role.service, "web-portal"))
    assert from_system["first_owner"] == "web-portal"


async def test_every_endpoint_needs_a_token(complaints: RunningService) -> None:
    some_id = uuid.uuid4()
    for method, path in [
        ("POST", "/complaints"),
        ("GET", "/complaints"),
        ("GET", f"/complaints/{some_id}"),
        ("POST", f"/complaints/{some_id}/transitions"),
        ("GET", "/complaint-policy"),
        ("PUT", "/complaint-policy"),
        ("GET", "/complaints-analytics"),
        ("POST", f"/compensations/{some_id}/decision"),
    ]:
        response = await complaints.client.request(method, path, json={})
        assert response.status_code == 401, (method, path)


async def test_lists_filter_by_first_owner_and_page_by_cursor(
    complaints: RunningService, stack: Stack
) -> None:
    for _ in range(3):
        await open_complaint(complaints, headers=staff(subject="agent-a"))
    await open_complaint(complaints, headers=staff(subject="agent-b"))
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {
            "first_owner": "agent-a",
            "limit": 2,
            **({"cursor": cursor} if cursor else {}),
        }
        page = (await complaints.client.get("/complaints", params=params, headers=staff())).json()
        assert all(item["first_owner"] == "agent-a" for item in page["items"])
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 3
    bad = await complaints.client.get("/complaints", params={"cursor": "garbage"}, headers=staff())
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "cursor"
    missing = await complaints.client.get(f"/complaints/{uuid.uuid4()}", headers=staff())
    assert missing.status_code == 404


@pytest.mark.parametrize(
    "uri",
    [
        "javascript:alert(document.cookie)",
        "data:text/html,<script>x</script>",
        "file:///etc/passwd",
        "https://",
    ],
)
async def test_an_attachment_must_be_a_place_to_fetch_from_not_code_or_a_local_file(
    complaints: RunningService, uri: str
) -> None:
    refused = await complaints.client.post(
        "/complaints",
        json={
            "customer_id": str(uuid.uuid4()),
            "channel": "web",
            "category": "delivery",
            "description": "See the attachment.",
            "attachments": [{"uri": uri}],
        },
        headers=staff(),
    )
    assert problem(refused, 422) == "validation-error"
    assert refused.json()["errors"][0]["field"] == "attachments.0.uri"
