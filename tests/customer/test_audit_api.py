"""The customer service's audit log: merges and erasures by ids and the names of the fields that changed,
never the values; account managers and exchange rates; erasure is never blocked by the log."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.clock import ManualClock
from shared.roles import Role
from tests.customer.helpers import leaks, register
from tests.harness import Stack, auth, problem
from tests.shared.audit_support import by, entries, the_entry

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
async def customers(stack: Stack) -> Stack:
    await stack.start("customer", clock=ManualClock(NOW), run_workers=False)
    return stack


async def test_a_merge_and_an_erasure_are_recorded_without_the_persons_data_and_erasure_goes_through(
    customers: Stack,
) -> None:
    client = customers["customer"].client
    kept = await register(customers, name="Wang Fang", email="wang.fang@example.com")
    duplicate = await register(customers, name="Wang Fang", phone="+8613800138000")
    merged = await client.post(
        f"/customers/{kept['id']}/merge",
        json={"duplicate_id": duplicate["id"]},
        headers=auth(Role.supervisor, subject="sup-7"),
    )
    assert merged.status_code == 200, merged.text
    entry = await the_entry(customers["customer"], "customer.merge")
    by(entry, "sup-7", NOW)
    assert (entry["subject_type"], entry["subject_id"]) == ("customer", kept["id"])
    assert entry["before"] == {"status": "active"}
    assert entry["after"]["status"] == "active" and entry["after"]["merged_id"] == duplicate["id"]
    assert "phone" in entry["after"]["fields_changed"]
    assert "+8613800138000" not in str(entry)

    erased = await client.delete(f"/customers/{kept['id']}", headers=auth(Role.admin, subject="root"))
    assert erased.status_code == 204, erased.text
    entry = await the_entry(customers["customer"], "customer.erase")
    by(entry, "root", NOW)
    assert entry["before"] == {"status": "active"} and entry["after"]["status"] == "erased"
    assert {"name", "email", "phone"} <= set(entry["after"]["fields_changed"])
    # Nothing of the person is left anywhere, the audit log included; its entries about them remain.
    url = customers["customer"].database_url
    assert await leaks(url, "Wang Fang", "wang.fang@example.com", "13800138000") == []
    assert len(await entries(customers["customer"], subject_id=kept["id"])) == 2


async def test_account_managers_and_exchange_rates_are_recorded(customers: Stack) -> None:
    client = customers["customer"].client
    customer = await register(customers)
    supervisor = auth(Role.supervisor, subject="sup-1")
    named = await client.patch(
        f"/customers/{customer['id']}", json={"account_manager": "ann"}, headers=supervisor
    )
    assert named.status_code == 200, named.text
    entry = await the_entry(customers["customer"], "account_manager.put")
    by(entry, "sup-1", NOW)
    assert (entry["before"], entry["after"]) == ({"account_manager": None}, {"account_manager": "ann"})

    rate = {"currency": "USD", "rate": "7.2", "effective_from": "2026-11-01T00:00:00Z"}
    stated = await client.post("/exchange-rates", json=rate, headers=auth(Role.manager, subject="m-1"))
    assert stated.status_code == 201, stated.text
    # The same rate again changes nothing and records nothing.
    assert (await client.post("/exchange-rates", json=rate, headers=auth(Role.manager))).status_code == 200
    entry = await the_entry(customers["customer"], "exchange_rate.state")
    by(entry, "m-1", NOW)
    assert entry["subject_id"] == stated.json()["id"] and entry["before"] is None
    assert (entry["after"]["currency"], entry["after"]["rate"]) == ("USD", "7.2")

    assert problem(await client.get("/audit", headers=auth(Role.agent)), 403)
