"""The 360 read model: once a write has committed, the stored view is the view built afresh from the data.

Each test makes one kind of change and then compares, byte for byte, the stored document with the
view built from the tables at that moment (``View.document_of``, which the read model does not use
to answer), and with what ``GET /customers/{id}/360`` answers. A stale document fails the first
comparison; a missing one (a read that fell back to building) fails the check that it is stored.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from services.customer import service as customer_service
from services.customer.cli import import_file
from services.customer.models import ViewDocument
from services.customer.record_schemas import ImportKind
from services.customer.settings import CustomerSettings
from services.customer.view import View, answer
from shared import migrations
from shared.db import Database
from shared.events import Envelope, Event, envelope_for
from shared.events.complaints import TOPIC as COMPLAINTS
from shared.events.notify import TOPIC as NOTIFY
from shared.events.segmentation import TOPIC as SEGMENTATION
from shared.roles import Role
from tests.customer.helpers import business, register
from tests.harness import Stack, auth, eventually
from tests.shared.bus_helpers import produce_events
from tests.shared.event_examples import example

MOMENT = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)


@pytest.fixture
async def customers(stack: Stack) -> Stack:
    await stack.start("customer", run_workers=False)
    return stack


async def stored_and_fresh(
    stack: Stack, customer_id: str, view: View | None = None
) -> tuple[Any, bytes | None]:
    """The stored row (document, etag, fingerprint) and the view built from the tables now."""
    running = stack["customer"]
    view = view or running.app.state.customer_view
    assert view is not None
    db = Database(running.database_url)
    try:
        async with db.read() as session:
            stored = (
                await session.execute(
                    sa.select(ViewDocument.document, ViewDocument.etag, ViewDocument.fingerprint).where(
                        ViewDocument.customer_id == uuid.UUID(customer_id)
                    )
                )
            ).one_or_none()
            row = (
                await session.execute(view.statement(db.dialect), {"customer_id": uuid.UUID(customer_id)})
            ).one_or_none()
    finally:
        await db.dispose()
    if row is None or row._mapping["status"] in customer_service.GONE:
        return stored, None
    return stored, answer(view.document_of(row)).document


async def current(stack: Stack, customer_id: str) -> dict[str, Any]:
    """The stored view, after checking that it is there, is not stale, and is what the API answers."""
    stored, fresh = await stored_and_fresh(stack, customer_id)
    assert stored is not None, "no stored view: the read model was not kept"
    assert stored.fingerprint == stack["customer"].app.state.customer_view.fingerprint
    assert fresh is not None and stored.document == fresh, "the stored view is stale"
    answered = await stack["customer"].client.get(f"/customers/{customer_id}/360", headers=auth())
    assert answered.status_code == 200 and answered.content == stored.document
    assert answered.headers["etag"] == f'"{stored.etag}"'
    found: dict[str, Any] = orjson.loads(stored.document)
    return found


async def test_profile_tags_contacts_interests_consent_and_interactions_keep_the_stored_view(
    customers: Stack,
) -> None:
    client = customers["customer"].client
    cid = (await business(customers))["id"]
    assert (await current(customers, cid))["contact_warning"] is not None
    base = f"/customers/{cid}"

    changed = await client.patch(base, json={"name": "Acme Tea Co.", "tags": ["vip"]}, headers=auth())
    assert changed.status_code == 200, changed.text
    view = await current(customers, cid)
    assert (view["customer"]["name"], view["customer"]["tags"]) == ("Acme Tea Co.", ["vip"])

    contacts = []
    for name in ("Zhang Wei", "Liu Fang"):
        added = await client.post(f"{base}/contacts", json={"name": name, "role": "finance"}, headers=auth())
        assert added.status_code == 201, added.text
        contacts.append(added.json()["id"])
    view = await current(customers, cid)
    assert [c["name"] for c in view["contacts"]] == ["Liu Fang", "Zhang Wei"]
    assert view["contact_warning"] is None
    await client.patch(f"{base}/contacts/{contacts[0]}", json={"title": "CFO"}, headers=auth())
    assert [c["title"] for c in (await current(customers, cid))["contacts"]] == [None, "CFO"]
    assert (await client.delete(f"{base}/contacts/{contacts[1]}", headers=auth())).status_code == 204
    assert [c["name"] for c in (await current(customers, cid))["contacts"]] == ["Zhang Wei"]

    interests = {"interests": ["tea", "garden"], "source": "call"}
    assert (await client.put(f"{base}/interests", json=interests, headers=auth())).status_code == 200
    assert (await current(customers, cid))["interests"] == ["garden", "tea"]
    # Dropping one is a set-based delete, not an ORM change.
    dropped = {"interests": ["tea"], "source": "call"}
    assert (await client.put(f"{base}/interests", json=dropped, headers=auth())).status_code == 200
    assert (await current(customers, cid))["interests"] == ["tea"]

    consent = {"granted": True, "source": "web form"}
    assert (
        await client.put(f"{base}/consents/email/marketing", json=consent, headers=auth())
    ).status_code == 200
    assert [c["granted"] for c in (await current(customers, cid))["consents"]] == [True]

    call = {"channel": "phone", "kind": "call", "outcome": "resolved", "occurred_at": "2026-11-20T08:00:00Z"}
    logged = await client.post(f"{base}/interactions", json=call, headers=auth())
    assert logged.status_code == 201, logged.text
    assert [i["kind"] for i in (await current(customers, cid))["recent_interactions"]] == ["call"]


async def test_purchases_and_refunds_keep_the_totals_of_the_stored_view(customers: Stack) -> None:
    client = customers["customer"].client
    cid = (await register(customers))["id"]
    bought = await client.post(
        f"/customers/{cid}/purchases",
        json={"order_id": "SO-1", "amount": "100.00", "currency": "CNY"},
        headers=auth(),
    )
    assert bought.status_code == 201, bought.text
    view = await current(customers, cid)
    assert (view["totals"]["purchases"], view["totals"]["net"]) == (1, "100.00")
    refund = {"reference": "RF-1", "amount": "30.00", "currency": "CNY"}
    url = f"/customers/{cid}/purchases/{bought.json()['id']}/refunds"
    assert (await client.post(url, json=refund, headers=auth())).status_code == 201
    view = await current(customers, cid)
    assert (view["totals"]["refunded"], view["totals"]["net"]) == ("30.00", "70.00")
    assert view["recent_purchases"][0]["refunded"] == "30.00"


async def test_many_writes_at_once_to_one_customer_leave_the_view_with_all_of_them(
    customers: Stack,
) -> None:
    client = customers["customer"].client
    cid = (await register(customers))["id"]

    async def log(n: int) -> None:
        call = {"channel": "phone", "kind": "call", "occurred_at": f"2026-11-20T08:{n:02d}:00Z"}
        assert (
            await client.post(f"/customers/{cid}/interactions", json=call, headers=auth())
        ).status_code == 201

    async def buy(n: int) -> None:
        order = {"order_id": f"SO-{n}", "amount": "10.00", "currency": "CNY"}
        assert (
            await client.post(f"/customers/{cid}/purchases", json=order, headers=auth())
        ).status_code == 201

    await asyncio.gather(*(log(n) for n in range(6)), *(buy(n) for n in range(6)))
    view = await current(customers, cid)
    assert (len(view["recent_interactions"]), view["totals"]["purchases"]) == (6, 6)


def event(event_type: str, customer_id: str, **changes: Any) -> Envelope[Event]:
    payload = example(event_type, uuid.UUID(customer_id), **changes)
    return envelope_for(payload, source="/tests")


async def test_events_of_other_services_keep_the_stored_view(stack: Stack) -> None:
    await stack.start("customer")
    cid = (await register(stack))["id"]
    complaint = uuid.uuid4()
    envelopes = {
        SEGMENTATION: [event("csm.segment.tier_changed.v1", cid, tier="gold", changed_at=MOMENT)],
        COMPLAINTS: [event("csm.complaint.opened.v1", cid, complaint_id=complaint, opened_at=MOMENT)],
        NOTIFY: [
            event("csm.notification.sent.v1", cid, notification_id=uuid.uuid4(), sent_at=MOMENT),
        ],
    }
    for topic, sent in envelopes.items():
        await produce_events(stack.bootstrap, stack.prefix + topic, list(sent))

    async def all_applied() -> dict[str, Any]:
        stored, _ = await stored_and_fresh(stack, cid)
        assert stored is not None
        view: dict[str, Any] = orjson.loads(stored.document)
        assert view["standing"]["tier"] == "gold"
        assert [c["id"] for c in view["open_complaints"]] == [str(complaint)]
        assert len(view["recent_notifications"]) == 1
        return view

    await eventually(all_applied)
    await current(stack, cid)
    closed = event(
        "csm.complaint.status_changed.v1",
        cid,
        complaint_id=complaint,
        status="closed",
        changed_at=MOMENT + timedelta(hours=1),
    )
    await produce_events(stack.bootstrap, stack.prefix + COMPLAINTS, [closed])

    async def closed_applied() -> None:
        stored, _ = await stored_and_fresh(stack, cid)
        assert stored is not None and orjson.loads(stored.document)["open_complaints"] == []

    await eventually(closed_applied)
    await current(stack, cid)


async def test_a_merge_rebuilds_the_survivor_and_removes_the_duplicate_erasure_removes_the_view(
    customers: Stack,
) -> None:
    client = customers["customer"].client
    survivor, duplicate = [(await register(customers, email=f"{n}@example.com"))["id"] for n in "ab"]
    order = {"order_id": "SO-9", "amount": "12.00", "currency": "CNY"}
    assert (
        await client.post(f"/customers/{duplicate}/purchases", json=order, headers=auth())
    ).status_code == 201
    merged = await client.post(
        f"/customers/{survivor}/merge", json={"duplicate_id": duplicate}, headers=auth(Role.supervisor)
    )
    assert merged.status_code == 200, merged.text
    view = await current(customers, survivor)
    assert [p["order_id"] for p in view["recent_purchases"]] == ["SO-9"]
    stored, _ = await stored_and_fresh(customers, duplicate)
    assert stored is None
    assert (await client.get(f"/customers/{duplicate}/360", headers=auth())).status_code == 404

    assert (await client.delete(f"/customers/{survivor}", headers=auth(Role.admin))).status_code == 204
    stored, _ = await stored_and_fresh(customers, survivor)
    assert stored is None  # personal data: the stored view goes with the rest
    assert (await client.get(f"/customers/{survivor}/360", headers=auth())).status_code == 404


async def test_the_view_has_an_etag_and_answers_304_while_it_has_not_changed(customers: Stack) -> None:
    client = customers["customer"].client
    cid = (await register(customers))["id"]
    first = await client.get(f"/customers/{cid}/360", headers=auth())
    etag = first.headers["etag"]
    unchanged = await client.get(f"/customers/{cid}/360", headers={**auth(), "If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.content == b""
    assert unchanged.headers["etag"] == etag
    weak = await client.get(f"/customers/{cid}/360", headers={**auth(), "If-None-Match": f'"x", W/{etag}'})
    assert weak.status_code == 304
    await client.patch(f"/customers/{cid}", json={"name": "Li Na Wang"}, headers=auth())
    changed = await client.get(f"/customers/{cid}/360", headers={**auth(), "If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert changed.json()["customer"]["name"] == "Li Na Wang"

    # The route reads If-None-Match itself (a parameter less to solve per request); the API
    # description still names the header and the 304, once, and still asks for a token.
    operation = (await client.get("/openapi.json")).json()["paths"]["/customers/{customer_id}/360"]["get"]
    headers = [p["name"] for p in operation["parameters"] if p["in"] == "header"]
    assert headers == ["If-None-Match"]
    assert "304" in operation["responses"] and operation["security"] == [{"HTTPBearer": []}]
    assert (await client.get(f"/customers/{cid}/360")).status_code == 401


async def test_a_process_with_other_view_settings_builds_the_view_rather_than_serve_the_stored_one(
    stack: Stack,
) -> None:
    first = await stack.start("customer", run_workers=False)
    cid = (await register(stack))["id"]
    for n in range(3):
        order = {"order_id": f"SO-{n}", "amount": "10.00", "currency": "CNY"}
        assert (
            await first.client.post(f"/customers/{cid}/purchases", json=order, headers=auth())
        ).status_code == 201
    other = Stack(stack.bootstrap, stack.databases)
    try:
        narrow = await other.start(
            "customer", database_url=first.database_url, run_workers=False, view_recent_purchases=1
        )
        answered = (await narrow.client.get(f"/customers/{cid}/360", headers=auth())).json()
        assert len(answered["recent_purchases"]) == 1
    finally:
        await other.close()
    assert len((await current(stack, cid))["recent_purchases"]) == 3


async def test_the_migration_builds_the_views_of_the_customers_there_are(customers: Stack) -> None:
    ids = [(await register(customers, email=f"{n}@example.com"))["id"] for n in range(3)]
    database = customers["customer"].database_url
    await migrations.downgrade("customer", database, "0007")
    await migrations.upgrade("customer", database)
    # The migration builds with the settings of its environment (here the defaults).
    settings = CustomerSettings()
    view = View(settings, settings.common.currency)
    for cid in ids:
        stored, fresh = await stored_and_fresh(customers, cid, view)
        assert stored is not None and stored.fingerprint == view.fingerprint
        assert stored.document == fresh


async def test_an_import_stores_the_views_once_the_file_is_in(stack: Stack, tmp_path: Path) -> None:
    service = await stack.start("customer", run_workers=False)
    settings = CustomerSettings(database_url=service.database_url, common=stack.common)
    people = tmp_path / "customers.csv"
    people.write_text("external_id,name\nC1,Li Na\nC2,Wang Fang\nC3,Zhao Lei\n", encoding="utf-8")
    orders = tmp_path / "purchases.csv"
    orders.write_text(
        "order_id,customer_external_id,amount,currency,purchased_at\n"
        "O1,C1,10.00,CNY,2026-01-01T10:00:00Z\nO2,C1,5.00,CNY,2026-01-02T10:00:00Z\n"
        "O3,C2,7.00,CNY,2026-01-03T10:00:00Z\n",
        encoding="utf-8",
    )
    for kind, path in ((ImportKind.customers, people), (ImportKind.purchases, orders)):
        summary = await import_file(
            kind,
            path,
            settings=settings,
            rejected_path=tmp_path / "out.csv",
            batch_size=2,
            show_progress=False,
        )
        assert summary.rejected == 0
    listed = (await service.client.get("/customers", params={"limit": 10}, headers=auth())).json()["items"]
    totals = {}
    for customer in listed:
        totals[customer["name"]] = (await current(stack, customer["id"]))["totals"]["purchases"]
    assert totals == {"Li Na": 2, "Wang Fang": 1, "Zhao Lei": 0}
