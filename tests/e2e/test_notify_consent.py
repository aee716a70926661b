"""A customer who withdrew marketing consent receives no marketing message, ever.

Checked across every playbook twice: the shipped defaults as they are, and then every one of
them edited so that all its messages and tasks are marketing. A control customer who kept
their consent gets the marketing messages, so the test fails if the gate lets nothing through
or lets everything through. The receivers are the judges: no delivery id of a marketing
message to the customer arrives at the mail server, the SMS provider or a webhook.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.notify.channels import delivery_id
from services.notify.models import Notification
from shared.events import Envelope, Event
from shared.roles import Role
from tests.harness import auth, eventually
from tests.notify.fixtures import http_receiver, mailbox, notify
from tests.notify.support import Notify, event

pytestmark = pytest.mark.e2e

__all__ = ["http_receiver", "mailbox", "notify"]

CHANNELS = ("email", "sms", "in_app", "phone")


async def customer(notify: Notify, name: str, *, withdraw: bool) -> uuid.UUID:
    customer_id = await notify.register(
        name=name, email=f"{name}@example.com", account_manager="am-1", marketing=CHANNELS, interests=("tea",)
    )
    if withdraw:
        notify.clock.advance(timedelta(minutes=1))
        withdrawn = await notify.publish(
            *[
                event(
                    "csm.customer.consent_changed.v1",
                    customer_id,
                    channel=channel,
                    purpose="marketing",
                    granted=False,
                    source="unsubscribe link",
                    changed_at=notify.clock.now(),
                )
                for channel in CHANNELS
            ]
        )
        await notify.consumed(*withdrawn)
    return customer_id


def every_occasion(customer_id: uuid.UUID, now: datetime) -> list[Event]:
    """An event for each event-started playbook (the calendar and announcement ones start otherwise)."""
    complaint = uuid.uuid4()
    return [
        event("csm.purchase.recorded.v1", customer_id, first_purchase=True, purchase_id=uuid.uuid4()),
        event(
            "csm.segment.tier_changed.v1",
            customer_id,
            previous_tier="gold",
            tier="platinum",
            key_account=True,
        ),
        event(
            "csm.segment.risk_changed.v1", customer_id, previous_risk="low", risk="at_risk", tier="platinum"
        ),
        event(
            "csm.complaint.opened.v1",
            customer_id,
            complaint_id=complaint,
            opened_at=now,
            first_response_due_at=now + timedelta(hours=2),
        ),
        event("csm.complaint.escalated.v1", customer_id, complaint_id=complaint),
        event("csm.complaint.sla_breached.v1", customer_id, complaint_id=complaint, due_at=now),
        event("csm.complaint.resolved.v1", customer_id, complaint_id=complaint),
        event("csm.complaint.survey_answered.v1", customer_id, complaint_id=complaint, poor=True),
    ]


async def run_every_playbook(notify: Notify, customers: list[uuid.UUID], topic: str) -> None:
    envelopes: list[Envelope[Event]] = []
    for customer_id in customers:
        envelopes += await notify.publish(*every_occasion(customer_id, notify.clock.now()))
    await notify.consumed(*envelopes)
    response = await notify.client.post(
        "/announcements",
        json={"topic": topic, "title": "新品", "body": "新茶到了"},
        headers=auth(Role.manager),
    )
    assert response.status_code == 202, response.text
    # Past the survey's day and the care call's week, and into a new quarter for the visits.
    for _ in range(8):
        await notify.advance(timedelta(days=1))
        await notify.scan()

    async def all_settled() -> None:
        for customer_id in customers:
            found = await notify.notifications(customer_id)
            assert found and all(n.status in ("sent", "failed", "suppressed") for n in found)

    await eventually(all_settled)


def arrived(notify: Notify) -> set[str]:
    """The delivery ids every receiver has seen."""
    ids = {str(m["Message-ID"]).strip("<>").split("@")[0] for m in notify.mailbox.messages()}
    ids |= set(notify.http.sms)
    ids |= set(notify.http.webhooks)
    return ids


async def check(
    notify: Notify, withdrawn: uuid.UUID, control: uuid.UUID
) -> tuple[list[Notification], list[Notification]]:
    at_receivers = arrived(notify)
    mine = await notify.notifications(withdrawn)
    theirs = await notify.notifications(control)
    for message in mine:
        if message.purpose == "marketing":
            assert message.status == "suppressed", (message.playbook, message.step, message.status)
            assert "marketing consent" in (message.last_error or ""), message.last_error
            assert delivery_id(message.idempotency_key) not in at_receivers
    assert not [t for t in await notify.tasks(withdrawn) if t.purpose == "marketing"]
    return mine, theirs


async def test_no_marketing_message_ever_reaches_a_customer_who_withdrew_consent(notify: Notify) -> None:
    await notify.register_webhook()
    policy = await notify.client.get("/policy", headers=auth())
    document = {**policy.json()["policy"], "marketing_cap": None}  # the control may receive all of it
    assert (await notify.client.put("/policy", json=document, headers=auth(Role.manager))).status_code == 200
    withdrawn = await customer(notify, "withdrawn", withdraw=True)
    control = await customer(notify, "control", withdraw=False)

    # The shipped playbooks.
    await run_every_playbook(notify, [withdrawn, control], "tea")
    mine, theirs = await check(notify, withdrawn, control)
    assert {n.playbook for n in mine if n.status == "sent"} >= {
        "first_purchase_care",
        "tier_upgrade_welcome",
        "complaint_acknowledgement",
        "complaint_survey",
    }, "service messages still reach the customer"
    sent_marketing = {n.playbook for n in theirs if n.purpose == "marketing" and n.status == "sent"}
    assert sent_marketing == {"win_back", "interest_match"}
    assert not [n for n in mine if n.playbook == "interest_match"], "the announcement skipped them"

    # Every playbook again, edited so that everything it sends or asks staff to do is marketing.
    playbooks = (await notify.client.get("/playbooks", headers=auth())).json()
    for playbook in playbooks:
        definition: dict[str, Any] = playbook["definition"]
        for step in definition["steps"]:
            if step["kind"] in ("message", "task"):
                step["purpose"] = "marketing"
        saved = await notify.client.put(
            f"/playbooks/{playbook['key']}", json=definition, headers=auth(Role.manager)
        )
        assert saved.status_code == 200, saved.text
    notify.clock.set(datetime(2027, 4, 1, 2, 0, tzinfo=UTC))  # a new quarter: the visits are due again
    await run_every_playbook(notify, [withdrawn, control], "Tea")
    mine, theirs = await check(notify, withdrawn, control)
    marketing_playbooks = {
        p["key"] for p in playbooks if any(s["kind"] == "message" for s in p["definition"]["steps"])
    }
    reached = {n.playbook for n in theirs if n.purpose == "marketing" and n.status == "sent"}
    assert reached == marketing_playbooks, "with consent, every playbook's marketing goes out"
    suppressed = {n.playbook for n in mine if n.purpose == "marketing" and n.status == "suppressed"}
    assert suppressed == marketing_playbooks - {"interest_match"}
    control_visits = [
        t for t in await notify.tasks(control) if t.kind == "on_site_visit" and t.purpose == "marketing"
    ]
    assert len(control_visits) == 1, "a marketing task is created when the phone consent is there"


async def test_consent_withdrawn_while_a_marketing_message_waits_out_quiet_hours_stops_it(
    notify: Notify,
) -> None:
    notify.clock.set(datetime(2026, 11, 23, 13, 30, tzinfo=UTC))  # 21:30 in Shanghai
    customer_id = await notify.register(marketing=("email",))
    published = await notify.publish(
        event("csm.segment.risk_changed.v1", customer_id, previous_risk="low", risk="at_risk", tier="iron"),
    )
    await notify.consumed(*published)

    async def waiting() -> None:
        [offer] = await notify.notifications(customer_id)
        assert offer.status == "pending" and offer.due_at == datetime(2026, 11, 24, 0, 0, tzinfo=UTC)

    await eventually(waiting)
    notify.clock.advance(timedelta(hours=1))
    withdrawn = await notify.publish(
        event(
            "csm.customer.consent_changed.v1",
            customer_id,
            channel="email",
            purpose="marketing",
            granted=False,
            changed_at=notify.clock.now(),
        )
    )
    await notify.consumed(*withdrawn)
    notify.clock.set(datetime(2026, 11, 24, 0, 1, tzinfo=UTC))  # 08:01: the quiet hours are over
    [offer] = await notify.settled(customer_id, 1)
    assert (offer.status, offer.last_error) == (
        "suppressed",
        "no marketing consent for email; no marketing consent for sms; no marketing consent for in_app",
    )
    assert notify.mailbox.messages() == []
