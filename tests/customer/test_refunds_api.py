"""Purchases with line items, refunds that never exceed what was paid, and the lifetime figures."""

from __future__ import annotations

from typing import Any

import pytest

from tests.customer.helpers import register, staged
from tests.harness import Stack, auth


@pytest.fixture
async def customers(stack: Stack) -> Stack:
    await stack.start("customer", run_workers=False)
    return stack


async def buy(stack: Stack, customer_id: str, order: str, amount: str, **fields: object) -> dict[str, Any]:
    response = await stack["customer"].client.post(
        f"/customers/{customer_id}/purchases",
        json={"order_id": order, "amount": amount, "currency": "CNY", **fields},
        headers=auth(),
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_line_items_set_the_item_count_and_must_agree_with_it(customers: Stack) -> None:
    customer = await register(customers)
    lines = [
        {"sku": "TEA-1", "name": "Longjing 250 g", "quantity": 2, "unit_price": "80.00"},
        {"sku": "CUP-9", "quantity": 1, "unit_price": "40.00"},
    ]
    purchase = await buy(customers, customer["id"], "SO-1", "200.00", line_items=lines)
    assert purchase["item_count"] == 3 and purchase["line_items"][0]["sku"] == "TEA-1"
    [event] = await staged(customers["customer"], "csm.purchase.recorded.v1")
    assert event["data"]["item_count"] == 3 and event["data"]["first_purchase"] is True
    disagreeing = await customers["customer"].client.post(
        f"/customers/{customer['id']}/purchases",
        json={
            "order_id": "SO-2",
            "amount": "80.00",
            "currency": "CNY",
            "item_count": 5,
            "line_items": lines[:1],
        },
        headers=auth(),
    )
    assert disagreeing.status_code == 422


async def test_refunds_partial_then_whole_never_more_than_was_paid(customers: Stack) -> None:
    client = customers["customer"].client
    customer = await register(customers)
    purchase = await buy(customers, customer["id"], "SO-10", "100.00")
    url = f"/customers/{customer['id']}/purchases/{purchase['id']}/refunds"
    part = await client.post(
        url,
        json={"reference": "RF-1", "amount": "30.00", "currency": "CNY", "reason": "dented"},
        headers=auth(),
    )
    assert part.status_code == 201 and part.json()["amount"] == "30.00"
    too_much = await client.post(
        url, json={"reference": "RF-2", "amount": "70.01", "currency": "CNY"}, headers=auth()
    )
    assert too_much.status_code == 422 and too_much.json()["errors"][0]["field"] == "amount"
    assert too_much.json()["refunded"] == "30.00"
    again = await client.post(
        url, json={"reference": "RF-1", "amount": "30.00", "currency": "CNY"}, headers=auth()
    )
    assert again.status_code == 200 and again.json()["id"] == part.json()["id"]
    rest = await client.post(url, json={"reference": "RF-3", "currency": "CNY"}, headers=auth())
    assert rest.status_code == 201 and rest.json()["amount"] == "70.00"
    nothing_left = await client.post(
        url, json={"reference": "RF-4", "amount": "0.01", "currency": "CNY"}, headers=auth()
    )
    assert nothing_left.status_code == 422
    events = [e["data"] for e in await staged(customers["customer"], "csm.purchase.refunded.v1")]
    assert [(e["amount"], e["fully_refunded"]) for e in events] == [("30.00", False), ("70.00", True)]
    view = (await client.get(f"/customers/{customer['id']}/360", headers=auth())).json()
    assert view["totals"] | {"first_purchase_at": None, "last_purchase_at": None} == {
        "purchases": 1,
        "spent": "100.00",
        "refunded": "100.00",
        "net": "0.00",
        "currency": "CNY",
        "first_purchase_at": None,
        "last_purchase_at": None,
    }
    assert view["recent_purchases"][0]["refunded"] == "100.00"


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"reference": "R", "amount": "1.00", "currency": "USD"}, 422, "currency"),
        ({"reference": "R", "amount": "-1.00", "currency": "CNY"}, 422, "amount"),
        ({"reference": "", "currency": "CNY"}, 422, "reference"),
        ({"reference": "R", "currency": "CNY", "refunded_at": "2000-01-01T00:00:00Z"}, 422, "refunded_at"),
    ],
)
async def test_a_bad_refund_is_refused_naming_the_field(
    customer_api: Stack, body: dict[str, object], status: int, field: str
) -> None:
    customer = await register(customer_api)
    purchase = await buy(customer_api, customer["id"], f"SO-20-{customer['id']}", "10.00")
    response = await customer_api["customer"].client.post(
        f"/customers/{customer['id']}/purchases/{purchase['id']}/refunds", json=body, headers=auth()
    )
    assert response.status_code == status and response.json()["errors"][0]["field"] == field


async def test_a_refund_of_someone_elses_purchase_is_404(customer_api: Stack) -> None:
    one, other = await register(customer_api), await register(customer_api)
    purchase = await buy(customer_api, one["id"], "SO-30", "10.00")
    response = await customer_api["customer"].client.post(
        f"/customers/{other['id']}/purchases/{purchase['id']}/refunds",
        json={"reference": "R", "currency": "CNY"},
        headers=auth(),
    )
    assert response.status_code == 404


async def test_purchases_list_newest_first_by_cursor_and_totals_add_up(customers: Stack) -> None:
    client = customers["customer"].client
    customer = await register(customers)
    for n, day in enumerate(("2024-01-05", "2025-06-01", "2023-03-03", "2025-01-01", "2024-07-07")):
        await buy(
            customers, customer["id"], f"SO-4{n}", f"{10 * (n + 1)}.00", purchased_at=f"{day}T10:00:00Z"
        )
    seen, cursor = [], None
    while True:
        page = (
            await client.get(
                f"/customers/{customer['id']}/purchases",
                params={"limit": 2, **({"cursor": cursor} if cursor else {})},
                headers=auth(),
            )
        ).json()
        seen += [p["purchased_at"][:10] for p in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["2025-06-01", "2025-01-01", "2024-07-07", "2024-01-05", "2023-03-03"]
    totals = (await client.get(f"/customers/{customer['id']}/360", headers=auth())).json()["totals"]
    assert (totals["purchases"], totals["spent"]) == (5, "150.00")
    assert (totals["first_purchase_at"], totals["last_purchase_at"]) == (
        "2023-03-03T10:00:00Z",
        "2025-06-01T10:00:00Z",
    )
    firsts = [
        e["data"]["first_purchase"] for e in await staged(customers["customer"], "csm.purchase.recorded.v1")
    ]
    assert firsts == [True, False, False, False, False]
