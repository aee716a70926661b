"""Sending: retries with back-off, visible failures, quiet hours, the marketing cap, preferences."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.notify.api import WEBHOOK_FAILURE_HIDDEN
from services.notify.dispatch import running
from shared.roles import Role
from shared.sealing import PREFIX
from tests.harness import Stack, auth, eventually
from tests.notify.receivers import HttpReceiver, Mailbox
from tests.notify.support import Notify, event, start_notify, subject


async def complaint(notify: Notify, customer: uuid.UUID) -> None:
    await notify.consumed(
        *await notify.publish(event("csm.complaint.opened.v1", customer, complaint_id=uuid.uuid4()))
    )


async def test_a_send_that_fails_for_a_while_is_retried_with_back_off_and_then_delivered(
    notify: Notify,
) -> None:
    notify.http.sms_refusals.extend([503, 429])
    customer = await notify.register()
    await complaint(notify, customer)

    async def retrying(attempts: int, due_in: timedelta) -> None:
        [message] = await notify.notifications(customer)
        assert (message.status, message.attempts) == ("pending", attempts)
        assert message.due_at == notify.clock.now() + due_in
        assert message.last_error and message.last_error.startswith("SMS provider answered")

    await eventually(lambda: retrying(1, timedelta(seconds=30)))
    await notify.advance(timedelta(seconds=30))
    await eventually(lambda: retrying(2, timedelta(seconds=120)))
    await notify.advance(timedelta(seconds=120))
    [sent] = await notify.settled(customer, 1)
    assert (sent.status, sent.channel, sent.attempts) == ("sent", "sms", 3)
    assert notify.http.sms_refusals == [] and len(notify.http.sms) == 1
    [event_sent] = await notify.published("csm.notification.sent.v1", expect=1)
    assert event_sent["data"]["notification_id"] == str(sent.id)


async def test_a_permanent_refusal_fails_at_once_and_says_so(notify: Notify) -> None:
    notify.http.sms_refusals.append(400)
    customer = await notify.register()
    await complaint(notify, customer)
    [failed] = await notify.settled(customer, 1)
    assert (failed.status, failed.attempts, failed.last_error) == ("failed", 1, "SMS provider answered 400")
    [announced] = await notify.published("csm.notification.failed.v1", expect=1)
    assert announced["data"]["reason"].startswith(PREFIX), "a provider's answer may quote the address"
    assert (await notify.stack.opened(announced)) | {"failed_at": None} == {
        "customer_id": str(customer),
        "notification_id": str(failed.id),
        "channel": "sms",
        "purpose": "service",
        "playbook": "complaint_acknowledgement",
        "step": "acknowledge",
        "reason": "SMS provider answered 400",
        "attempts": 1,
        "failed_at": None,
    }
    listed = await notify.client.get("/notifications", params={"status": "failed"}, headers=auth())
    assert [item["id"] for item in listed.json()["items"]] == [str(failed.id)]


async def test_a_send_that_keeps_failing_ends_failed_after_the_last_retry(
    stack: Stack, mailbox: Mailbox, http_receiver: HttpReceiver
) -> None:
    notify = await start_notify(stack, mailbox, http_receiver, send_retry_backoff=(10.0, 20.0))
    mailbox.refusals.extend(["451 4.3.0 Try again later"] * 3)
    customer = await notify.register(phone=None)
    await notify.consumed(
        *await notify.publish(event("csm.purchase.recorded.v1", customer, first_purchase=True))
    )
    for attempts, wait in ((1, 10), (2, 20)):

        async def pending(attempts: int = attempts) -> None:
            [message] = await notify.notifications(customer)
            assert message.status == "pending" and message.attempts == attempts

        await eventually(pending)
        await notify.advance(timedelta(seconds=wait))
    [failed] = await notify.settled(customer, 1)
    assert (failed.status, failed.attempts, failed.last_error) == ("failed", 3, "SMTP 451")
    assert mailbox.messages() == []


async def test_a_message_in_quiet_hours_waits_for_the_morning_of_the_customers_time_zone(
    notify: Notify,
) -> None:
    notify.clock.set(datetime(2026, 11, 24, 3, 0, tzinfo=UTC))  # 22:00 in New York, 11:00 in Shanghai
    new_yorker = await notify.register(email="ny@example.com", time_zone="America/New_York")
    shanghai = await notify.register(email="sh@example.com")
    await notify.consumed(
        *await notify.publish(
            event("csm.purchase.recorded.v1", new_yorker, first_purchase=True),
            event("csm.purchase.recorded.v1", shanghai, first_purchase=True),
        )
    )
    await notify.settled(shanghai, 1)

    async def waiting() -> None:
        [thanks] = await notify.notifications(new_yorker)
        assert thanks.status == "pending"
        assert thanks.due_at == datetime(2026, 11, 24, 13, 0, tzinfo=UTC), "08:00 in New York"

    await eventually(waiting)
    notify.clock.set(datetime(2026, 11, 24, 12, 59, tzinfo=UTC))
    await notify.advance(timedelta(seconds=1))
    await eventually(waiting)
    notify.clock.set(datetime(2026, 11, 24, 13, 0, tzinfo=UTC))
    [thanks] = await notify.settled(new_yorker, 1)
    assert thanks.sent_at == datetime(2026, 11, 24, 13, 0, tzinfo=UTC)


async def test_the_customers_own_quiet_hours_and_channel_choices_are_honoured(notify: Notify) -> None:
    customer = await notify.register()
    chosen = await notify.client.put(
        f"/customers/{customer}/preferences",
        json={"channels": {"email": {"service": False}}, "quiet_hours": {"start": "09:00", "end": "11:00"}},
        headers=auth(Role.service),
    )
    assert chosen.status_code == 200, chosen.text
    assert chosen.json()["channels"]["email"] == {"service": False, "marketing": True}
    await notify.consumed(
        *await notify.publish(event("csm.purchase.recorded.v1", customer, first_purchase=True))
    )

    async def waits_for_eleven() -> None:
        [thanks] = await notify.notifications(customer)
        assert (thanks.status, thanks.due_at) == ("pending", datetime(2026, 11, 23, 3, 0, tzinfo=UTC))

    await eventually(waits_for_eleven)  # 10:00 in Shanghai is inside the customer's own quiet hours
    await notify.advance(timedelta(hours=1))
    [thanks] = await notify.settled(customer, 1)
    assert thanks.channel == "sms", (
        "e-mail is turned off for service messages, so the next channel carries it"
    )
    assert notify.mailbox.messages() == []


async def test_the_marketing_cap_holds_back_the_third_offer_in_a_week(notify: Notify) -> None:
    customer = await notify.register(marketing=("email",))

    async def at_risk(count: int) -> None:
        await notify.consumed(
            *await notify.publish(
                event(
                    "csm.segment.risk_changed.v1", customer, previous_risk="low", risk="at_risk", tier="iron"
                )
            )
        )
        await notify.settled(customer, count)

    for count in (1, 2, 3):
        await at_risk(count)
        await notify.advance(timedelta(days=2))
    found = await notify.settled(customer, 3)
    assert [n.status for n in found] == ["sent", "sent", "suppressed"]
    assert found[2].last_error == "the marketing frequency cap is reached"
    await notify.advance(timedelta(days=2))  # the first offer is now more than 7 days old
    await at_risk(4)
    found = await notify.settled(customer, 4)
    assert found[3].status == "sent"
    assert len(notify.mailbox.messages()) == 3


async def test_a_message_for_a_customer_not_yet_known_waits_for_the_profile(notify: Notify) -> None:
    customer = uuid.uuid4()
    await complaint(notify, customer)

    async def waiting() -> None:
        [ack] = await notify.notifications(customer)
        assert ack.status == "pending" and ack.due_at == notify.clock.now() + timedelta(seconds=30)

    await eventually(waiting)
    profile = {"kind": "individual", "name": "Late Arrival", "email": "late@example.com", "phone": None}
    await notify.consumed(
        *await notify.publish(event("csm.customer.registered.v1", customer, profile=profile))
    )
    await notify.advance(timedelta(seconds=30))
    [ack] = await notify.settled(customer, 1)
    assert ack.channel == "email"
    assert subject(notify.mailbox.to("late@example.com")[0]).startswith("我们已收到您的投诉")


async def test_an_alert_to_a_webhook_nobody_registered_is_suppressed_with_the_reason(notify: Notify) -> None:
    customer = await notify.register()
    await notify.consumed(
        *await notify.publish(event("csm.complaint.sla_breached.v1", customer, complaint_id=uuid.uuid4()))
    )
    [alert] = await notify.settled(customer, 1)
    assert (alert.status, alert.last_error) == ("suppressed", "no enabled webhook named complaint-alerts")


async def test_what_a_webhook_target_answered_is_for_admins_only(notify: Notify) -> None:
    """A target's answers would let anyone who reads messages map the network behind it."""
    await notify.register_webhook()
    notify.http.webhook_refusals.append(403)
    customer = await notify.register()
    await notify.consumed(
        *await notify.publish(event("csm.complaint.sla_breached.v1", customer, complaint_id=uuid.uuid4()))
    )
    [alert] = await notify.settled(customer, 1)
    assert alert.status == "failed" and "403" in (alert.last_error or "")
    for role, shown in [(Role.admin, alert.last_error), (Role.supervisor, WEBHOOK_FAILURE_HIDDEN)]:
        listed = await notify.client.get(
            "/notifications", params={"customer_id": str(customer)}, headers=auth(role)
        )
        assert [n["last_error"] for n in listed.json()["items"]] == [shown]
        one = await notify.client.get(f"/notifications/{alert.id}", headers=auth(role))
        assert one.json()["last_error"] == shown


async def test_the_commit_that_makes_a_message_wakes_the_dispatcher_without_waiting_for_a_poll(
    stack: Stack, mailbox: Mailbox, http_receiver: HttpReceiver
) -> None:
    """The dispatcher and the scanner poll once an hour here: only the doorbell rung by the consumer's
    commit can make the acknowledgement go within the test's patience."""
    notify = await start_notify(stack, mailbox, http_receiver, scan_poll_seconds=3600.0)
    customer = await notify.register()
    await complaint(notify, customer)
    [sent] = await notify.settled(customer, 1)
    assert sent.status == "sent" and sent.playbook == "complaint_acknowledgement"
    await notify.published("csm.notification.sent.v1", expect=1)


def claimed(notify: Notify, by: str) -> float:
    """Messages claimed so far by ``by`` (made_due: in the transaction that made them due)."""
    registry = notify.service.runtime.metrics.registry
    return registry.get_sample_value("csm_notify_claimed_total", {"by": by}) or 0.0


async def test_an_acknowledgement_is_claimed_in_the_transaction_that_made_it_and_sent_once_it_commits(
    stack: Stack, mailbox: Mailbox, http_receiver: HttpReceiver
) -> None:
    """No claim of the dispatcher's own: the consumer's transaction claimed the message, through the
    same gate, and the dispatcher sent it as that transaction committed."""
    notify = await start_notify(stack, mailbox, http_receiver, scan_poll_seconds=3600.0)
    customer = await notify.register()
    await complaint(notify, customer)
    [sent] = await notify.settled(customer, 1)
    assert (sent.status, sent.channel, sent.attempts) == ("sent", "sms", 1)
    assert len(http_receiver.sms) == 1
    await notify.published("csm.notification.sent.v1", expect=1)
    assert (claimed(notify, "made_due"), claimed(notify, "dispatcher")) == (1, 0)


async def one_send_at_a_time(
    stack: Stack, mailbox: Mailbox, http_receiver: HttpReceiver, customers: int
) -> tuple[Notify, list[uuid.UUID]]:
    """Notify with one send at a time, and ``customers`` complaints: the first one's acknowledgement
    is held by the receiver, so those of the others find no room and wait."""
    notify = await start_notify(
        stack, mailbox, http_receiver, scan_poll_seconds=3600.0, dispatch_concurrency=1
    )
    registered = [await notify.register(phone=f"+86138123456{78 + n}") for n in range(customers)]
    http_receiver.hold = True
    await complaint(notify, registered[0])
    await eventually(lambda: _held(http_receiver))
    for customer in registered[1:]:
        await complaint(notify, customer)
    return notify, registered


async def release_and_settle(notify: Notify, http_receiver: HttpReceiver, customers: list[uuid.UUID]) -> None:
    """Let the held send go: each customer's acknowledgement is then sent, on its first attempt."""
    http_receiver.hold = False
    http_receiver.release.set()
    for customer in customers:
        [sent] = await notify.settled(customer, 1)
        assert (sent.status, sent.attempts) == ("sent", 1)


async def test_a_message_the_dispatcher_has_no_room_for_waits_for_its_next_claim(
    stack: Stack, mailbox: Mailbox, http_receiver: HttpReceiver
) -> None:
    """One send at a time, and the first held by the receiver: the second acknowledgement's
    transaction leaves it waiting, and the dispatcher claims it once the first is done."""
    notify, (first, second) = await one_send_at_a_time(stack, mailbox, http_receiver, 2)
    [waiting] = await notify.notifications(second)
    assert (waiting.status, waiting.attempts) == ("pending", 0)

    await release_and_settle(notify, http_receiver, [first, second])
    assert sorted(sms.to for sms in http_receiver.sms.values()) == ["+8613812345678", "+8613812345679"]
    assert (claimed(notify, "made_due"), claimed(notify, "dispatcher")) == (1, 1)


async def test_a_claim_in_a_transaction_that_rolls_back_is_not_counted(
    stack: Stack, mailbox: Mailbox, http_receiver: HttpReceiver
) -> None:
    """The metrics count what committed: a consumer's transaction that claimed a message and then
    failed is retried, and the try that failed must not count as a claim."""
    notify, (first, second) = await one_send_at_a_time(stack, mailbox, http_receiver, 2)
    [waiting] = await notify.notifications(second)
    db = notify.service.runtime.db
    dispatcher = running(db)
    assert dispatcher is not None and claimed(notify, "made_due") == 1

    with pytest.raises(RuntimeError, match="after the claim"):
        async with db.unit_of_work() as session:
            jobs = await dispatcher.claim_made_due([waiting.id], session=session)
            assert [job.id for job in jobs] == [waiting.id]
            raise RuntimeError("the transaction fails after the claim")
    [still] = await notify.notifications(second)
    assert (still.status, still.attempts) == ("pending", 0)
    assert (claimed(notify, "made_due"), claimed(notify, "dispatcher")) == (1, 0)

    await release_and_settle(notify, http_receiver, [first, second])
    assert (claimed(notify, "made_due"), claimed(notify, "dispatcher")) == (1, 1)


async def test_sends_handed_over_beyond_the_cap_wait_in_line(
    stack: Stack, mailbox: Mailbox, http_receiver: HttpReceiver
) -> None:
    """A consumer's transaction sees the room before it commits and hands its sends over after: if
    the room went meanwhile, they wait for a free slot rather than pass dispatch_concurrency."""
    notify, customers = await one_send_at_a_time(stack, mailbox, http_receiver, 3)
    waiting = [n.id for customer in customers[1:] for n in await notify.notifications(customer)]
    db = notify.service.runtime.db
    dispatcher = running(db)
    assert dispatcher is not None and len(waiting) == 2

    # The room was taken between this transaction's look and its hand-over (here, by the first send).
    async with db.unit_of_work() as session:
        jobs = await dispatcher.claim_made_due(waiting, session=session)
    assert len(jobs) == 2
    dispatcher.take(jobs)
    registry = notify.service.runtime.metrics.registry
    assert registry.get_sample_value("csm_notify_sends_in_flight") == 1
    assert dispatcher.room() == 0 and http_receiver.held == ["sms"]

    await release_and_settle(notify, http_receiver, customers)
    assert len(http_receiver.sms) == 3
    await eventually(lambda: _none_in_flight(registry))


async def _none_in_flight(registry: Any) -> None:
    assert registry.get_sample_value("csm_notify_sends_in_flight") == 0


async def _held(http_receiver: HttpReceiver) -> None:
    assert http_receiver.held == ["sms"]
