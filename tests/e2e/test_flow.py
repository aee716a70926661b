"""A purchase and a complaint flow through all four services over the real broker."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from services.segmentation.policy import DEFAULT_POLICY
from shared.events.segmentation import TierChanged
from shared.messaging import inbox_message
from shared.roles import Role
from tests.customer.helpers import staged
from tests.harness import RunningService, Stack, auth, eventually

pytestmark = pytest.mark.e2e


async def start_all(stack: Stack) -> None:
    for name in ("customer", "segmentation", "complaints", "notify"):
        await stack.start(name)


async def register(stack: Stack, name: str = "Li Na") -> str:
    response = await stack["customer"].client.post("/customers", json={"name": name}, headers=auth())
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def test_a_purchase_moves_the_tier_and_produces_a_notification(stack: Stack) -> None:
    await start_all(stack)
    customer_id = await register(stack)

    response = await stack["customer"].client.post(
        f"/customers/{customer_id}/purchases",
        json={"order_id": "SO-1001", "amount": "12000.00", "currency": "CNY", "channel": "web"},
        headers=auth(),
    )
    assert response.status_code == 201, response.text

    async def segment_is_gold() -> dict[str, object]:
        found = await stack["segmentation"].client.get(f"/segments/{customer_id}", headers=auth())
        assert found.status_code == 200, found.text
        body = found.json()
        assert body["tier"] == "gold"
        return body  # type: ignore[no-any-return]

    segment = await eventually(segment_is_gold)
    assert segment["figures"] == {
        "recency_days": 0,
        "frequency": 1,
        "monetary": "12000.00",
        "currency": "CNY",
        "first_purchase_at": segment["figures"]["first_purchase_at"],  # type: ignore[index]
        "last_purchase_at": segment["figures"]["last_purchase_at"],  # type: ignore[index]
    }
    assert "gold" in str(segment["rule"])

    async def notified() -> list[dict[str, object]]:
        found = await stack["notify"].client.get(
            "/notifications", params={"customer_id": customer_id}, headers=auth()
        )
        assert found.status_code == 200, found.text
        items = found.json()["items"]
        assert sorted(item["playbook"] for item in items) == ["first_purchase_care", "tier_upgrade_welcome"]
        return items  # type: ignore[no-any-return]

    notifications = await eventually(notified)
    welcome = next(item for item in notifications if item["playbook"] == "tier_upgrade_welcome")
    assert welcome["title"] == "欢迎成为金卡会员"  # the customer's locale is zh-CN by default

    async def customer_sees_tier() -> None:
        found = await stack["customer"].client.get(f"/customers/{customer_id}", headers=auth())
        assert found.json()["tier"] == "gold"

    await eventually(customer_sees_tier)

    history = await stack["segmentation"].client.get(f"/segments/{customer_id}/history", headers=auth())
    [change] = history.json()["items"]
    assert (change["previous_tier"], change["tier"], change["cause_event_type"]) == (
        "lead",
        "gold",
        "csm.purchase.recorded.v1",
    )


async def test_a_complaint_produces_a_notification(stack: Stack) -> None:
    await start_all(stack)
    customer_id = await register(stack, "Zhang Wei")

    response = await stack["complaints"].client.post(
        "/complaints",
        json={
            "customer_id": customer_id,
            "channel": "phone",
            "category": "delivery",
            "description": "The parcel arrived a week late.",
        },
        headers=auth(Role.agent, subject="agent-007"),
    )
    assert response.status_code == 201, response.text
    complaint = response.json()
    assert complaint["first_owner"] == "agent-007"
    assert complaint["status"] == "new"

    async def acknowledged() -> None:
        found = await stack["notify"].client.get(
            "/notifications", params={"customer_id": customer_id}, headers=auth()
        )
        items = found.json()["items"]
        assert [item["playbook"] for item in items] == ["complaint_acknowledgement"]

    await eventually(acknowledged)


async def test_a_policy_apply_moves_customers_without_a_welcome_and_a_purchase_still_earns_one(
    stack: Stack,
) -> None:
    """The welcome storm: a manager's new policy lifts a customer to gold; nobody is told. A
    purchase that lifts another one there is still celebrated."""
    await start_all(stack)
    lifted, buyer = await register(stack, "Zhang Wei"), await register(stack, "Li Na")
    customer = stack["customer"].client
    bought = await customer.post(
        f"/customers/{lifted}/purchases",
        json={"order_id": "SO-2001", "amount": "2000.00", "currency": "CNY"},
        headers=auth(),
    )
    assert bought.status_code == 201, bought.text
    seg = stack["segmentation"].client

    async def tier_of(customer_id: str, tier: str) -> None:
        found = (await seg.get(f"/segments/{customer_id}", headers=auth())).json()
        assert found.get("tier") == tier, found

    await eventually(lambda: tier_of(lifted, "iron"))
    manager = auth(Role.manager)
    document = DEFAULT_POLICY.model_dump(mode="json")
    document["tier_rules"] = [{"tier": "gold", "min_monetary": "1000"}, {"tier": "lead"}]
    stored = await seg.put("/policy", json={"policy": document}, headers=manager)
    assert stored.status_code == 201, stored.text
    applied = await seg.post(f"/policy/versions/{stored.json()['version']}/apply", headers=manager)
    assert applied.status_code == 200, applied.text
    await eventually(lambda: tier_of(lifted, "gold"))
    [policy_move] = [
        e for e in await staged(stack["segmentation"], TierChanged.type) if e["data"]["cause"] == "policy"
    ]
    assert policy_move["data"]["customer_id"] == lifted

    bought = await customer.post(
        f"/customers/{buyer}/purchases",
        json={"order_id": "SO-2002", "amount": "12000.00", "currency": "CNY"},
        headers=auth(),
    )
    assert bought.status_code == 201, bought.text

    async def playbooks_of(customer_id: str, expected: list[str]) -> None:
        found = await stack["notify"].client.get(
            "/notifications", params={"customer_id": customer_id}, headers=auth()
        )
        assert sorted(item["playbook"] for item in found.json()["items"]) == expected

    await eventually(lambda: playbooks_of(buyer, ["first_purchase_care", "tier_upgrade_welcome"]))
    await eventually(lambda: applied_in(stack["notify"], uuid.UUID(policy_move["id"])))
    await playbooks_of(lifted, ["first_purchase_care"])  # thanked for buying; not welcomed to gold


async def applied_in(service: RunningService, event_id: uuid.UUID) -> None:
    async with service.runtime.db.read() as session:
        seen = await session.scalar(
            sa.select(sa.func.count()).select_from(inbox_message).where(inbox_message.c.event_id == event_id)
        )
    assert seen == 1
