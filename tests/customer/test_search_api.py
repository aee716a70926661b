"""Finding customers by name, phone, e-mail, tag, tier, status and account manager, a page at a time."""

from __future__ import annotations

from typing import Any

import pytest

from tests.customer.helpers import business, register
from tests.harness import Stack, auth


@pytest.fixture
async def customers(stack: Stack) -> Stack:
    await stack.start("customer", run_workers=False)
    return stack


async def find(stack: Stack, **params: Any) -> list[str]:
    response = await stack["customer"].client.get("/customers", params=params, headers=auth())
    assert response.status_code == 200, response.text
    return [c["name"] for c in response.json()["items"]]


async def test_each_filter_finds_exactly_its_customers(customers: Stack) -> None:
    await register(
        customers,
        name="Li Na",
        email="li.na@example.com",
        phone="+8613800000001",
        tags=["vip"],
        account_manager="am-1",
    )
    await register(
        customers, name="LI Ming", phone="+8613800000002", backup_phone="+8613800000009", status="dormant"
    )
    await register(
        customers, name="Lin Fang", email="fang@example.com", tags=["vip", "tea"], account_manager="am-2"
    )
    await register(customers, name="Wang Li", tags=["tea"], account_manager="am-1", status="lost")
    acme = await business(customers, name="Acme Trading Co.", account_manager="am-2")
    await customers["customer"].client.post(
        f"/customers/{acme['id']}/contacts",
        json={
            "name": "Buyer",
            "role": "purchasing",
            "phone": "+8613800000005",
            "email": "buyer@acme.example",
        },
        headers=auth(),
    )
    assert await find(customers, name="li") == ["LI Ming", "Li Na", "Lin Fang"]
    assert await find(customers, name="li n") == ["Li Na"]
    assert await find(customers, name="ＬＩ") == ["LI Ming", "Li Na", "Lin Fang"], "full-width letters fold"  # noqa: RUF001
    assert await find(customers, phone="+86 138 0000 0001") == ["Li Na"]
    assert await find(customers, phone="+8613800000009") == ["LI Ming"], "a backup phone finds its customer"
    assert await find(customers, phone="+8613800000005") == ["Acme Trading Co."], "so does a contact's phone"
    assert await find(customers, email="LI.NA@example.com") == ["Li Na"]
    assert await find(customers, email="buyer@acme.example") == ["Acme Trading Co."]
    assert await find(customers, tag="VIP") == ["Li Na", "Lin Fang"]
    assert await find(customers, tag="tea", status="lost") == ["Wang Li"]
    assert await find(customers, account_manager="am-1") == ["Li Na", "Wang Li"], (
        "lost customers too: win-back needs them"
    )
    assert await find(customers, status="dormant") == ["LI Ming"]
    assert await find(customers, kind="business") == ["Acme Trading Co."]
    assert await find(customers, name="li", account_manager="am-2") == ["Lin Fang"]
    assert await find(customers, name="zz") == []


async def test_the_tier_filter_uses_segmentations_verdict(customer_api: Stack) -> None:
    await register(customer_api, name="Li Na")
    assert await find(customer_api, tier="gold") == []
    bad = await customer_api["customer"].client.get("/customers", params={"tier": "diamond"}, headers=auth())
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "tier"


@pytest.mark.parametrize(
    "params", [{"name": " "}, {"phone": "12345"}, {"limit": 0}, {"limit": 201}, {"cursor": "garbage"}]
)
async def test_bad_search_parameters_are_422_naming_them(customer_api: Stack, params: dict[str, Any]) -> None:
    response = await customer_api["customer"].client.get("/customers", params=params, headers=auth())
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == next(iter(params))


@pytest.mark.parametrize("params", [{}, {"name": "cust"}])
async def test_pages_cover_every_match_once_in_order(customers: Stack, params: dict[str, Any]) -> None:
    names = [f"Customer {n:02d}" for n in (5, 1, 9, 3, 7, 2, 8, 4, 6, 0, 11)]
    for name in names:
        await register(customers, name=name)
    seen: list[str] = []
    cursor = None
    while True:
        page = (
            await customers["customer"].client.get(
                "/customers",
                params={**params, "limit": 4, **({"cursor": cursor} if cursor else {})},
                headers=auth(),
            )
        ).json()
        seen += [c["name"] for c in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == (sorted(names) if params else names), "by name with a name, else by registration"
