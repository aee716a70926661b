"""Erasure: the person's data goes from every table here, the anonymous purchase figures stay."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from services.customer.models import Purchase, PurchaseSummary
from shared.db import Database
from shared.events.notify import TOPIC as NOTIFY
from shared.roles import Role
from tests.customer.helpers import WINDOW, leaks, register, staged
from tests.customer.test_view_api import event, publish
from tests.harness import Stack, auth, eventually

PERSON = {
    "kind": "retailer",
    "name": "Qiu Xiaoyun",
    "email": "qiu.xiaoyun@example.com",
    "phone": "+8613911112222",
    "backup_phone": "+8613933334444",
    "address": "7 Lotus Lane",
    "external_id": "ERP-QXY",
    "notes": "Likes oolong",
}
SECRETS = (
    "Qiu Xiaoyun",
    "qiu.xiaoyun@example.com",
    "+8613911112222",
    "+8613933334444",
    "7 Lotus Lane",
    "ERP-QXY",
    "Likes oolong",
    "oolong lover",
)


async def fill_in_everything(stack: Stack, customer_id: str) -> None:
    """Give the person data in every table that can hold some."""
    client = stack["customer"].client
    base = f"/customers/{customer_id}"
    calls = [
        (
            "post",
            f"{base}/contacts",
            {"name": "Qiu Xiaoyun", "role": "decision_maker", "phone": "+8613911112222"},
        ),
        (
            "put",
            f"{base}/relationship",
            {"notes": "Qiu Xiaoyun, oolong lover", "competitors": ["Qiu Xiaoyun Tea"]},
        ),
        ("post", f"{base}/installations", {"product": "Kettle", "notes": "at 7 Lotus Lane"}),
        (
            "post",
            f"{base}/attachments",
            {"kind": "store_front_photo", "url": "https://x.example/qiu.xiaoyun@example.com"},
        ),
        (
            "post",
            f"{base}/interactions",
            {"channel": "phone", "kind": "call", "summary": "Qiu Xiaoyun called", "outcome": "oolong lover"},
        ),
        ("put", f"{base}/interests", {"interests": ["oolong lover"], "source": "Qiu Xiaoyun herself"}),
        ("put", f"{base}/consents/email/marketing", {"granted": True, "source": "Qiu Xiaoyun by phone"}),
        ("post", f"{base}/purchases", {"order_id": "SO-QXY-1", "amount": "88.00", "currency": "CNY"}),
        ("patch", base, {"tags": ["oolong lover"], "account_manager": "am-1"}),
    ]
    for method, url, body in calls:
        response = await getattr(client, method)(url, json=body, headers=auth(Role.supervisor))
        assert response.status_code in (200, 201), f"{url}: {response.text}"
    purchase = (await client.get(f"{base}/purchases", headers=auth())).json()["items"][0]
    refund = await client.post(
        f"{base}/purchases/{purchase['id']}/refunds",
        json={"reference": "RF-1", "amount": "8.00", "currency": "CNY", "reason": "Qiu Xiaoyun said so"},
        headers=auth(),
    )
    assert refund.status_code == 201


@pytest.fixture
async def customers(stack: Stack) -> Stack:
    await stack.start("customer", run_workers=False)
    return stack


async def test_erasure_is_for_admins_only(customers: Stack) -> None:
    customer = await register(customers)
    for role in (Role.agent, Role.supervisor, Role.manager, Role.service):
        response = await customers["customer"].client.delete(
            f"/customers/{customer['id']}", headers=auth(role)
        )
        assert response.status_code == 403
    assert (
        await customers["customer"].client.get(f"/customers/{customer['id']}", headers=auth())
    ).status_code == 200


async def test_erasure_leaves_no_personal_data_in_any_table_and_keeps_the_anonymous_figures(
    customers: Stack,
) -> None:
    client = customers["customer"].client
    customer = await register(customers, **PERSON)
    cid = customer["id"]
    await fill_in_everything(customers, cid)
    url = customers["customer"].database_url
    assert {table for table, _ in await leaks(url, *SECRETS)} >= {
        "customer",
        "contact",
        "relationship_record",
        "installation",
        "attachment",
        "interaction",
        "interest",
        "interest_change",
        "consent",
        "consent_change",
        "customer_tag",
        "refund",
        "outbox_message",
    }, "the test must first find the data it then expects gone"

    erased = await client.delete(f"/customers/{cid}", headers=auth(Role.admin, subject="dpo"))
    assert erased.status_code == 204
    assert await leaks(url, *SECRETS) == []

    assert (await client.get(f"/customers/{cid}", headers=auth())).status_code == 404
    assert (await client.get(f"/customers/{cid}/360", headers=auth())).status_code == 404
    assert (await client.delete(f"/customers/{cid}", headers=auth(Role.admin))).status_code == 404
    assert (await client.get("/customers", params={"email": PERSON["email"]}, headers=auth())).json()[
        "items"
    ] == []
    db = Database(url)
    try:
        async with db.read() as session:
            purchase = (
                await session.execute(
                    sa.select(Purchase.amount_minor, Purchase.refunded_minor, Purchase.customer_id)
                )
            ).one()
            summary = await session.get(PurchaseSummary, uuid.UUID(cid))
            assert summary is not None and (summary.purchases, summary.spent_minor) == (1, 8800)
    finally:
        await db.dispose()
    assert (purchase.amount_minor, purchase.refunded_minor, str(purchase.customer_id)) == (8800, 800, cid)
    [announced] = await staged(customers["customer"], "csm.customer.erased.v1")
    assert announced["subject"] == cid and announced["data"]["customer_id"] == cid
    [registered] = await staged(customers["customer"], "csm.customer.registered.v1")
    assert registered["data"]["profile"]["status"] == "erased", "retained events are rewritten, not dropped"


async def test_an_erased_customer_is_not_brought_back_by_an_import_or_by_late_events(stack: Stack) -> None:
    await stack.start("customer")
    client = stack["customer"].client
    cid = (await register(stack, **PERSON))["id"]
    assert (await client.delete(f"/customers/{cid}", headers=auth(Role.admin))).status_code == 204
    again = await client.post("/customers", json={**PERSON, "external_id": None}, headers=auth())
    assert again.status_code == 201, "registering anew is a new customer, by their own choice"
    from services.customer.importing import Importer, read_rows
    from services.customer.record_schemas import ImportKind

    runtime = stack["customer"].runtime
    importer = Importer(db=runtime.db, clock=runtime.clock, currency="CNY", batch_size=10, window=WINDOW)
    rows = read_rows(
        ["external_id,name", "ERP-QXY,Qiu Xiaoyun", "ERP-NEW,Somebody New"], ImportKind.customers
    )
    summary, rejections = await importer.run(ImportKind.customers, rows)
    assert (summary.imported, summary.already_imported, summary.rejected) == (1, 0, 1)
    assert [(r.line, r.reason) for r in rejections] == [
        (2, "this customer was erased; they are not imported again")
    ]
    await publish(stack, NOTIFY, event("csm.notification.sent.v1", cid, notification_id=uuid.uuid4()))

    async def consumed() -> None:
        assert (
            runtime.metrics.events_consumed.labels("customer", "csm.notification.sent.v1")._value.get() == 1
        )

    await eventually(consumed)
    from services.customer.models import NotificationView

    db = Database(stack["customer"].database_url)
    try:
        async with db.read() as session:
            assert (await session.scalars(sa.select(NotificationView))).all() == []
    finally:
        await db.dispose()
