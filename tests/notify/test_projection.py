"""Notify's projection of customers: erased customers are purged, merged ones follow the survivor."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from services.notify.models import ComplaintRef, Consent, Contact, Interest, PlaybookRun, Preference
from shared.roles import Role
from tests.harness import auth, eventually
from tests.notify.support import Notify, event


async def rows(notify: Notify, model: type[Any], customer_id: uuid.UUID) -> list[Any]:
    async with notify.service.runtime.db.read() as session:
        found = list((await session.scalars(sa.select(model).where(model.customer_id == customer_id))).all())
        session.expunge_all()
        return found


async def test_an_erased_customer_is_purged_and_never_reached_again(notify: Notify) -> None:
    customer = await notify.register(account_manager="am-1", marketing=("email",), interests=("tea",))
    await notify.client.put(
        f"/customers/{customer}/preferences",
        json={"quiet_hours": {"start": "22:00", "end": "07:00"}},
        headers=auth(Role.service),
    )
    complaint = uuid.uuid4()
    await notify.consumed(
        *await notify.publish(
            event("csm.purchase.recorded.v1", customer, first_purchase=True),
            event("csm.complaint.opened.v1", customer, complaint_id=complaint),
            event("csm.complaint.survey_answered.v1", customer, complaint_id=complaint, poor=True),
        )
    )
    await notify.settled(customer, 2)
    assert await notify.tasks(customer) and await rows(notify, PlaybookRun, customer)

    await notify.consumed(*await notify.publish(event("csm.customer.erased.v1", customer)))
    for model in (Interest, Consent, Preference, PlaybookRun, ComplaintRef):
        assert await rows(notify, model, customer) == [], model.__name__
    assert await notify.notifications(customer) == [] and await notify.tasks(customer) == []
    [tombstone] = await rows(notify, Contact, customer)
    assert tombstone.status == "erased"
    assert all(
        getattr(tombstone, field) is None for field in ("name", "email", "phone", "account_manager", "tier")
    )

    # Nothing that comes later reaches them: a late event, the week's care call, an announcement.
    late = await notify.publish(
        event(
            "csm.customer.updated.v1",
            customer,
            profile={"kind": "individual", "name": "李娜", "email": "li.na@example.com"},
            changed=["email"],
        ),
        event("csm.complaint.opened.v1", customer, complaint_id=uuid.uuid4()),
    )
    await notify.consumed(*late)
    await notify.advance(timedelta(days=8))
    await notify.scan()
    assert await notify.notifications(customer) == [] and await notify.tasks(customer) == []
    [tombstone] = await rows(notify, Contact, customer)
    assert tombstone.email is None


async def test_what_belonged_to_a_merged_duplicate_now_belongs_to_the_survivor(notify: Notify) -> None:
    survivor = await notify.register(email="keep@example.com", interests=("tea",))
    duplicate = await notify.register(email="dup@example.com", marketing=("email",), interests=("coffee",))
    await notify.consumed(
        *await notify.publish(
            event("csm.purchase.recorded.v1", duplicate, first_purchase=True),
            event(
                "csm.segment.tier_changed.v1",
                duplicate,
                previous_tier="gold",
                tier="platinum",
                key_account=True,
            ),
        )
    )
    [thanks, welcome] = await notify.settled(duplicate, 2)

    await notify.consumed(
        *await notify.publish(event("csm.customer.merged.v1", survivor, merged_id=duplicate))
    )
    moved = await notify.notifications(survivor)
    assert {n.id for n in moved} == {thanks.id, welcome.id}
    assert [r.customer_id for r in await rows(notify, PlaybookRun, survivor)] == [survivor]
    assert await rows(notify, Contact, duplicate) == []
    [contact] = await rows(notify, Contact, survivor)
    assert contact.key_account is True and contact.tier == "platinum"
    assert contact.email == "keep@example.com", "the survivor keeps its own contact points"
    consent = await rows(notify, Consent, survivor)
    assert [(c.channel, c.purpose, c.granted) for c in consent] == [("email", "marketing", True)]
    assert sorted(i.topic for i in await rows(notify, Interest, survivor)) == ["coffee", "tea"]

    # The care call a week later is the survivor's, once.
    await notify.advance(timedelta(days=7))

    async def care_call() -> None:
        tasks = [t for t in await notify.tasks(survivor) if t.kind == "care_call"]
        assert len(tasks) == 1

    await eventually(care_call)
    assert await notify.tasks(duplicate) == []
