"""Duplicates: finding likely ones, and merging one into another so that its history follows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from shared.clock import ManualClock
from shared.events.complaints import TOPIC as COMPLAINTS
from shared.roles import Role
from tests.customer.helpers import WINDOW, business, register, staged
from tests.customer.test_view_api import event, publish
from tests.harness import Stack, auth, eventually, problem

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


async def test_likely_duplicates_are_found_by_phone_email_and_similar_name(stack: Stack) -> None:
    await stack.start("customer", run_workers=False)
    client = stack["customer"].client
    me = await register(stack, name="Zhang Wei", email="zw@example.com", phone="+8613800000001")
    by_phone = await register(stack, name="W. Zhang", backup_phone="+8613800000001")
    by_email = await register(stack, name="Someone", email="ZW@example.com")
    by_name = await register(stack, name="zhang  wie")
    await register(stack, name="Zhao Lei", phone="+8613800000002")
    erased = await register(stack, name="Zhang Wei")
    assert (await client.delete(f"/customers/{erased['id']}", headers=auth(Role.admin))).status_code == 204
    found = (await client.get(f"/customers/{me['id']}/duplicates", headers=auth())).json()
    assert {c["customer"]["id"]: c["reasons"] for c in found} == {
        by_phone["id"]: ["same phone number"],
        by_email["id"]: ["same e-mail address"],
        by_name["id"]: ["similar name"],
    }
    assert found[-1]["customer"]["id"] == by_name["id"], "a name alone is the weakest evidence"
    assert all(0 < c["score"] <= 1 for c in found)


async def test_merging_moves_history_fills_blanks_and_retires_the_duplicate(stack: Stack) -> None:
    clock = ManualClock(NOW)
    await stack.start("customer", clock=clock)
    client = stack["customer"].client
    keep = await business(
        stack,
        name="Acme Trading",
        email="buy@acme.example",
        tags=["vip"],
        customer_since="2020-01-01T00:00:00Z",
    )
    dup = await business(
        stack,
        name="ACME Trading Co",
        email="old@acme.example",
        phone="+8613800000009",
        address="1 Harbour Rd",
        tags=["tea"],
        customer_since="2018-06-01T00:00:00Z",
        external_id="ERP-77",
    )
    k, d = keep["id"], dup["id"]
    for owner, order, amount in ((k, "SO-1", "100.00"), (d, "SO-2", "50.00"), (d, "SO-3", "25.00")):
        response = await client.post(
            f"/customers/{owner}/purchases",
            json={"order_id": order, "amount": amount, "currency": "CNY"},
            headers=auth(),
        )
        assert response.status_code == 201
    await client.post(f"/customers/{d}/contacts", json={"name": "Liu", "role": "finance"}, headers=auth())
    await client.post(
        f"/customers/{d}/interactions", json={"channel": "phone", "kind": "call"}, headers=auth()
    )
    await client.put(
        f"/customers/{d}/interests", json={"interests": ["pumps"], "source": "fair"}, headers=auth()
    )
    await client.put(
        f"/customers/{k}/consents/email/marketing", json={"granted": True, "source": "form"}, headers=auth()
    )
    clock.advance(timedelta(hours=1))
    await client.put(
        f"/customers/{d}/consents/email/marketing",
        json={"granted": False, "source": "unsubscribed"},
        headers=auth(),
    )
    complaint = uuid.uuid4()
    await publish(
        stack, COMPLAINTS, event("csm.complaint.opened.v1", d, complaint_id=complaint, opened_at=NOW)
    )

    async def projected() -> None:
        assert len((await client.get(f"/customers/{d}/360", headers=auth())).json()["open_complaints"]) == 1

    await eventually(projected)

    assert (
        await client.post(f"/customers/{k}/merge", json={"duplicate_id": d}, headers=auth())
    ).status_code == 403
    merged = await client.post(
        f"/customers/{k}/merge", json={"duplicate_id": d}, headers=auth(Role.supervisor)
    )
    assert merged.status_code == 200, merged.text
    result = merged.json()
    assert (
        result["moved"]["purchase"] == 2
        and result["moved"]["contact"] == 1
        and result["moved"]["interaction"] == 1
    )
    assert result["not_kept"] == ["email"]
    survivor = result["customer"]
    assert (survivor["email"], survivor["phone"], survivor["address"]) == (
        "buy@acme.example",
        "+8613800000009",
        "1 Harbour Rd",
    )
    assert survivor["tags"] == ["vip", "tea"] and survivor["customer_since"] == "2018-06-01T00:00:00Z"

    gone = await client.get(f"/customers/{d}", headers=auth())
    assert problem(gone, 404) == "customer-merged" and gone.json()["merged_into"] == k
    view = (await client.get(f"/customers/{k}/360", headers=auth())).json()
    assert (view["totals"]["purchases"], view["totals"]["spent"]) == (3, "175.00")
    assert [c["name"] for c in view["contacts"]] == ["Liu"] and view["interests"] == ["pumps"]
    assert [(c["channel"], c["granted"], c["source"]) for c in view["consents"]] == [
        ("email", False, "unsubscribed")
    ]
    assert [c["id"] for c in view["open_complaints"]] == [str(complaint)]
    assert (await client.get("/customers", params={"phone": "+8613800000009"}, headers=auth())).json()[
        "items"
    ][0]["id"] == k

    [announced] = await staged(stack["customer"], "csm.customer.merged.v1")
    assert (announced["data"]["customer_id"], announced["data"]["merged_id"]) == (k, d)
    updated = (await staged(stack["customer"], "csm.customer.updated.v1"))[-1]["data"]
    assert updated["customer_id"] == k and updated["profile"]["phone"] == "+8613800000009"

    # Later events about the duplicate belong to the survivor; purchases imported for it too.
    later = uuid.uuid4()
    await publish(stack, COMPLAINTS, event("csm.complaint.opened.v1", d, complaint_id=later, opened_at=NOW))

    async def followed() -> None:
        ids = [
            c["id"]
            for c in (await client.get(f"/customers/{k}/360", headers=auth())).json()["open_complaints"]
        ]
        assert str(later) in ids

    await eventually(followed)
    from services.customer.importing import Importer, read_rows
    from services.customer.record_schemas import ImportKind

    runtime = stack["customer"].runtime
    importer = Importer(db=runtime.db, clock=clock, currency="CNY", batch_size=10, window=WINDOW)
    rows = read_rows(
        ["order_id,customer_external_id,amount,currency", "SO-9,ERP-77,5.00,CNY"], ImportKind.purchases
    )
    summary, _ = await importer.run(ImportKind.purchases, rows)
    assert summary.imported == 1
    purchases = (await client.get(f"/customers/{k}/purchases", headers=auth())).json()["items"]
    assert "SO-9" in [p["order_id"] for p in purchases]


@pytest.mark.parametrize("which", ["self", "unknown", "merged"])
async def test_a_merge_that_cannot_be_is_refused(stack: Stack, which: str) -> None:
    await stack.start("customer", run_workers=False)
    client = stack["customer"].client
    one, two, three = [await register(stack) for _ in range(3)]
    supervisor = auth(Role.supervisor)
    if which == "merged":
        assert (
            await client.post(
                f"/customers/{one['id']}/merge", json={"duplicate_id": two["id"]}, headers=supervisor
            )
        ).status_code == 200
        target = two["id"]
    else:
        target = one["id"] if which == "self" else str(uuid.uuid4())
    response = await client.post(
        f"/customers/{three['id'] if which != 'self' else one['id']}/merge",
        json={"duplicate_id": target},
        headers=supervisor,
    )
    assert response.status_code == (422 if which == "self" else 404)
