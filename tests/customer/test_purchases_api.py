"""Registering customers and recording purchases over HTTP: the rules and the events they stage."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
import sqlalchemy as sa

from shared.db import Database
from shared.messaging import outbox_message
from shared.roles import Role
from tests.customer.helpers import staged
from tests.harness import Stack, auth, problem


@pytest.fixture
async def customers(stack: Stack) -> Stack:
    await stack.start("customer", run_workers=False)
    return stack


async def register(stack: Stack, **fields: object) -> dict[str, object]:
    response = await stack["customer"].client.post(
        "/customers", json={"name": "Li Na", **fields}, headers=auth()
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def staged_types(stack: Stack) -> list[str]:
    db = Database(stack["customer"].database_url)
    try:
        async with db.read() as session:
            rows = await session.scalars(
                sa.select(outbox_message.c.event_type).order_by(outbox_message.c.seq)
            )
            return list(rows.all())
    finally:
        await db.dispose()


async def test_registering_stores_a_normalised_profile_and_stages_customer_registered(
    customers: Stack,
) -> None:
    customer = await register(
        customers, email="li.na@example.com", phone="+86 138 1234 5678", time_zone="Asia/Shanghai"
    )
    assert customer["phone"] == "+8613812345678"
    assert customer["status"] == "active" and customer["tier"] is None
    fetched = await customers["customer"].client.get(f"/customers/{customer['id']}", headers=auth())
    assert fetched.json() == customer
    assert await staged_types(customers) == ["csm.customer.registered.v1"]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"phone": "13812345678"}, "phone"),
        ({"phone": "+86 123"}, "phone"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"locale": "chinese"}, "locale"),
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"kind": "alien"}, "kind"),
        ({"favourite_colour": "red"}, "favourite_colour"),
    ],
)
async def test_a_bad_profile_is_422_naming_the_field(
    customers: Stack, fields: dict[str, object], field: str
) -> None:
    response = await customers["customer"].client.post(
        "/customers", json={"name": "Li Na", **fields}, headers=auth()
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert [error["field"] for error in response.json()["errors"]] == [field]
    assert field in response.json()["detail"]


async def test_a_repeated_order_is_a_no_op_that_returns_the_first_purchase(customers: Stack) -> None:
    customer = await register(customers)
    body = {"order_id": "SO-77", "amount": "88.80", "currency": "CNY", "channel": "app", "item_count": 3}
    client = customers["customer"].client
    first = await client.post(f"/customers/{customer['id']}/purchases", json=body, headers=auth())
    again = await client.post(f"/customers/{customer['id']}/purchases", json=body, headers=auth())
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert first.json()["amount"] == "88.80"
    assert await staged_types(customers) == ["csm.customer.registered.v1", "csm.purchase.recorded.v1"]


async def test_an_order_id_reused_for_a_different_purchase_is_409(customers: Stack) -> None:
    one, other = await register(customers), await register(customers)
    client = customers["customer"].client
    body = {"order_id": "SO-78", "amount": "10.00", "currency": "CNY"}
    assert (
        await client.post(f"/customers/{one['id']}/purchases", json=body, headers=auth())
    ).status_code == 201
    different_amount = await client.post(
        f"/customers/{one['id']}/purchases", json={**body, "amount": "11.00"}, headers=auth()
    )
    different_customer = await client.post(f"/customers/{other['id']}/purchases", json=body, headers=auth())
    for response in (different_amount, different_customer):
        assert problem(response, 409) == "order-recorded-differently" and "SO-78" in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount": "12.345"}, "amount"),
        ({"amount": "-1"}, "amount"),
        ({"amount": "lots"}, "amount"),
        ({"currency": "yuan"}, "currency"),
        ({"currency": "USD"}, "currency"),
        ({"order_id": ""}, "order_id"),
        ({"purchased_at": "2026-11-01T10:00:00"}, "purchased_at"),
        ({"purchased_at": "19970101"}, "purchased_at"),  # never read as a Unix timestamp
        ({"purchased_at": 852076800}, "purchased_at"),
        ({"purchased_at": "1969-12-31T23:59:59+00:00"}, "purchased_at"),  # before the earliest date
        ({"purchased_at": "2190-01-01T00:00:00+00:00"}, "purchased_at"),  # in the future
        ({"channel": "pigeon"}, "channel"),
        ({"coupon": "X"}, "coupon"),
    ],
)
async def test_a_bad_purchase_is_422_naming_the_field(
    customers: Stack, body: dict[str, object], field: str
) -> None:
    customer = await register(customers)
    purchase = {"order_id": "SO-79", "amount": "10.00", "currency": "CNY", **body}
    response = await customers["customer"].client.post(
        f"/customers/{customer['id']}/purchases", json=purchase, headers=auth()
    )
    assert response.status_code == 422, response.text
    assert [error["field"] for error in response.json()["errors"]] == [field]


async def test_a_free_order_is_a_purchase_that_adds_nothing_to_what_was_spent(customers: Stack) -> None:
    customer = await register(customers)
    base = f"/customers/{customer['id']}"
    client = customers["customer"].client
    for order, amount in (("SO-FREE", "0"), ("SO-PAID", "25.00")):
        response = await client.post(
            f"{base}/purchases", json={"order_id": order, "amount": amount, "currency": "CNY"}, headers=auth()
        )
        assert response.status_code == 201, response.text
    free, paid = await staged(customers["customer"], "csm.purchase.recorded.v1")
    assert (Decimal(free["data"]["amount"]), free["data"]["first_purchase"]) == (Decimal(0), True)
    assert paid["data"]["first_purchase"] is False, "the free order was the first purchase"
    totals = (await client.get(f"{base}/360", headers=auth())).json()["totals"]
    assert (totals["purchases"], Decimal(totals["spent"])) == (2, Decimal("25.00"))


async def test_a_purchase_may_be_dated_in_the_past_for_imports(customers: Stack) -> None:
    customer = await register(customers)
    response = await customers["customer"].client.post(
        f"/customers/{customer['id']}/purchases",
        json={
            "order_id": "SO-80",
            "amount": "5.00",
            "currency": "CNY",
            "purchased_at": "2024-02-29T10:00:00+08:00",
        },
        headers=auth(),
    )
    assert response.status_code == 201
    assert response.json()["purchased_at"] == "2024-02-29T02:00:00Z"


async def test_an_unknown_customer_is_404_and_malformed_json_is_422(customers: Stack) -> None:
    client = customers["customer"].client
    unknown = "00000000-0000-4000-8000-00000000abcd"
    missing = await client.post(
        f"/customers/{unknown}/purchases",
        json={"order_id": "SO-81", "amount": "1.00", "currency": "CNY"},
        headers=auth(),
    )
    assert problem(missing, 404) == "customer-not-found" and unknown in missing.json()["detail"]
    broken = await client.post(
        "/customers", content=b'{"name": ', headers={**auth(), "content-type": "application/json"}
    )
    assert broken.status_code == 422 and broken.headers["content-type"] == "application/problem+json"


async def test_of_a_customers_purchases_arriving_at_once_exactly_one_is_the_first(customers: Stack) -> None:
    """Concurrent purchases of one new customer: exactly one is flagged first, for a single thank-you."""
    people = [await register(customers, name=f"Buyer {n}") for n in range(4)]

    async def buy(customer_id: str, n: int) -> None:
        response = await customers["customer"].client.post(
            f"/customers/{customer_id}/purchases",
            json={"order_id": f"{customer_id[:8]}-{n}", "amount": "100.00", "currency": "CNY"},
            headers=auth(),
        )
        assert response.status_code == 201, response.text

    await asyncio.gather(*(buy(str(person["id"]), n) for n in range(6) for person in people))
    recorded = await staged(customers["customer"], "csm.purchase.recorded.v1")
    assert len(recorded) == 24
    firsts = sorted(e["data"]["customer_id"] for e in recorded if e["data"]["first_purchase"])
    assert firsts == sorted(str(person["id"]) for person in people)


async def test_a_large_purchase_recorded_by_hand_takes_a_manager_a_system_records_any(
    customers: Stack,
) -> None:
    client = customers["customer"].client
    created = await client.post("/customers", json={"name": "Li Na"}, headers=auth())
    base = f"/customers/{created.json()['id']}/purchases"

    def order(name: str, amount: str) -> dict[str, str]:
        return {"order_id": name, "amount": amount, "currency": "CNY"}

    assert (await client.post(base, json=order("SO-1", "50000.00"), headers=auth())).status_code == 201
    huge = await client.post(base, json=order("SO-2", "999999999999.99"), headers=auth())
    assert problem(huge, 403) == "large-manual-purchase"
    assert problem(
        await client.post(base, json=order("SO-3", "50000.01"), headers=auth(Role.supervisor)), 403
    )
    assert (
        await client.post(base, json=order("SO-4", "80000.00"), headers=auth(Role.manager))
    ).status_code == 201
    assert (
        await client.post(base, json=order("SO-5", "900000.00"), headers=auth(Role.service))
    ).status_code == 201
    orders = (await client.get(base, headers=auth())).json()["items"]
    assert sorted(o["order_id"] for o in orders) == ["SO-1", "SO-4", "SO-5"]
