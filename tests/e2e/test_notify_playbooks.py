"""Each default playbook end to end: events on the real broker, notify in-process, real SMTP and HTTP
receivers, and a manual clock for the delays and quiet hours."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from services.notify.models import Task
from shared.events import Event
from shared.messaging import dead_letter
from shared.roles import Role
from tests.harness import auth, eventually
from tests.notify.fixtures import http_receiver, mailbox, notify
from tests.notify.support import Notify, event, subject, text

pytestmark = pytest.mark.e2e

__all__ = ["http_receiver", "mailbox", "notify"]


async def test_a_first_purchase_is_thanked_at_once_and_a_care_call_task_follows_a_week_later(
    notify: Notify,
) -> None:
    customer = await notify.register(account_manager="am-wang")
    repeat_buyer = await notify.register(email="repeat@example.com")
    published = await notify.publish(
        event("csm.purchase.recorded.v1", customer, first_purchase=True, order_id="SO-88"),
        event("csm.purchase.recorded.v1", repeat_buyer, first_purchase=False, order_id="SO-89"),
    )
    await notify.consumed(*published)

    [thanks] = await notify.settled(customer, 1)
    assert (thanks.playbook, thanks.step, thanks.channel, thanks.status) == (
        "first_purchase_care",
        "thanks",
        "email",
        "sent",
    )
    [mail] = notify.mailbox.to("li.na@example.com")
    assert subject(mail) == "感谢您的首次购买"
    assert "SO-88" in text(mail) and "李娜" in text(mail)
    assert await notify.notifications(repeat_buyer) == []

    await notify.advance(timedelta(days=6, hours=23))
    await notify.scan()
    assert await notify.tasks(customer) == [], "the care call is a week after the purchase, not before"

    await notify.advance(timedelta(hours=1))

    async def care_call() -> None:
        found = await notify.tasks(customer)
        assert len(found) == 1
        task = found[0]
        assert (task.kind, task.playbook, task.assignee, task.status) == (
            "care_call",
            "first_purchase_care",
            "am-wang",
            "open",
        )
        assert task.due_at == notify.clock.now() + timedelta(days=2)
        assert "李娜" in task.title

    await eventually(care_call)
    assert await notify.tasks(repeat_buyer) == []
    created = await notify.published("csm.task.created.v1", expect=2)
    assert [(e["data"]["kind"], e["data"]["assignee"]) for e in created] == [("care_call", "am-wang")]


async def test_a_playbook_whose_template_fails_fails_alone_and_the_event_is_still_served(
    notify: Notify,
) -> None:
    """A manager's template that fails at render time fails its own step, visibly, with its reason;
    the event is applied (not dead-lettered) and the event's other playbooks still run."""
    definition = (await notify.client.get("/playbooks/first_purchase_care", headers=auth())).json()
    broken = definition["definition"]
    broken["name"] = "A thank-you that cannot render"
    broken["steps"] = [broken["steps"][0]]
    broken["steps"][0]["template"] = {
        "zh": {"title": "谢谢", "body": "{% for i in range(100001) %}{{ i }}{% endfor %}"}
    }
    saved = await notify.client.put("/playbooks/broken_thanks", json=broken, headers=auth(Role.manager))
    assert saved.status_code == 200, saved.text

    customer = await notify.register()
    published = await notify.publish(
        event("csm.purchase.recorded.v1", customer, first_purchase=True, order_id="SO-90")
    )
    await notify.consumed(*published)
    found = {n.playbook: n for n in await notify.settled(customer, 2)}
    assert found["first_purchase_care"].status == "sent"
    assert "SO-90" in text(notify.mailbox.to("li.na@example.com")[0])
    failed = found["broken_thanks"]
    assert failed.status == "failed" and "Range too big" in (failed.last_error or "")
    async with notify.service.runtime.db.read() as session:
        assert await session.scalar(sa.select(sa.func.count()).select_from(dead_letter)) == 0


async def test_an_imported_first_purchase_is_history_and_is_not_thanked(notify: Notify) -> None:
    migrated = await notify.register(email="migrated@example.com")
    live = await notify.register(email="live@example.com")
    published = await notify.publish(
        event("csm.purchase.recorded.v1", migrated, first_purchase=True, order_id="OLD-1", imported=True),
        event("csm.purchase.recorded.v1", live, first_purchase=True, order_id="NEW-1"),
        event("csm.segment.tier_changed.v1", migrated, previous_tier=None, tier="platinum", imported=True),
    )
    await notify.consumed(*published)
    await notify.settled(live, 1)
    assert await notify.notifications(migrated) == []
    assert notify.mailbox.to("migrated@example.com") == [], (
        "neither thanked nor welcomed to a tier they already had"
    )
    await notify.advance(timedelta(days=8))
    await notify.scan()
    assert await notify.tasks(migrated) == [], "no care call for a purchase made before csm knew the customer"


async def test_an_upgrade_to_gold_or_platinum_is_welcomed_and_platinum_gets_an_account_manager(
    notify: Notify,
) -> None:
    chinese = await notify.register(account_manager="am-zhao")
    english = await notify.register(
        name="Emma Stone", email="emma@example.com", locale="en-GB", time_zone="Asia/Hong_Kong"
    )

    def moved(customer: uuid.UUID, previous: str | None, tier: str) -> Event:
        return event("csm.segment.tier_changed.v1", customer, previous_tier=previous, tier=tier)

    published = await notify.publish(
        moved(chinese, "lead", "iron"),  # not gold or platinum: no welcome
        moved(chinese, "iron", "gold"),
        moved(english, None, "gold"),  # a first classification straight into gold counts as an upgrade
    )
    await notify.consumed(*published)
    [gold] = await notify.settled(chinese, 1)
    [english_gold] = await notify.settled(english, 1)
    assert (gold.playbook, gold.step) == ("tier_upgrade_welcome", "welcome")
    [mail] = notify.mailbox.to("li.na@example.com")
    assert subject(mail) == "欢迎成为金卡会员"
    assert "会员专属折扣与积分" in text(mail), "the gold tier's benefits"
    [english_mail] = notify.mailbox.to("emma@example.com")
    assert subject(english_mail) == "Welcome to Gold" == english_gold.title
    assert "member-only discounts" in text(english_mail)
    assert await notify.tasks(chinese) == []

    published = await notify.publish(moved(chinese, "gold", "platinum"), moved(english, "gold", "iron"))
    await notify.consumed(*published)
    await notify.settled(chinese, 2)
    assert subject(notify.mailbox.to("li.na@example.com")[-1]) == "欢迎成为白金会员"
    [task] = await notify.tasks(chinese)
    assert (task.kind, task.assignee, task.assignee_role) == (
        "account_manager_introduction",
        "am-zhao",
        "manager",
    )
    assert len(await notify.notifications(english)) == 1, "a downgrade is not welcomed"


async def test_only_a_move_the_customer_caused_is_welcomed(notify: Notify) -> None:
    """A recompute, a policy apply, imported history or a merge moves people who did nothing new:
    no welcome storm. A purchase that lifts someone to gold is still celebrated."""
    batch_moved = {
        cause: await notify.register(email=f"{cause}@example.com")
        for cause in ("recompute", "policy", "imported", "manual", "analysis_date")
    }
    bought = await notify.register(email="bought@example.com")
    published = await notify.publish(
        *(
            event("csm.segment.tier_changed.v1", customer, previous_tier="iron", tier="gold", cause=cause)
            for cause, customer in batch_moved.items()
        ),
        event(
            "csm.segment.tier_changed.v1", bought, previous_tier="iron", tier="gold", cause="customer_event"
        ),
    )
    await notify.consumed(*published)
    [welcome] = await notify.settled(bought, 1)
    assert (welcome.playbook, welcome.status) == ("tier_upgrade_welcome", "sent")
    for cause, customer in batch_moved.items():
        assert await notify.notifications(customer) == [], cause
        assert notify.mailbox.to(f"{cause}@example.com") == [], cause


async def test_a_customer_at_risk_gets_a_win_back_offer_and_high_tiers_a_managers_call(
    notify: Notify,
) -> None:
    gold = await notify.register(account_manager="am-qian", marketing=("email",))
    iron = await notify.register(email="iron@example.com", marketing=("email",))
    published = await notify.publish(
        event(
            "csm.segment.risk_changed.v1",
            gold,
            previous_risk="low",
            risk="at_risk",
            tier="gold",
            reason="no purchase for 90 days",
        ),
        event("csm.segment.risk_changed.v1", iron, previous_risk="low", risk="at_risk", tier="iron"),
        event("csm.segment.risk_changed.v1", iron, previous_risk="at_risk", risk="low", tier="iron"),
    )
    await notify.consumed(*published)
    [offer] = await notify.settled(gold, 1)
    assert (offer.playbook, offer.purpose, offer.channel, offer.status) == (
        "win_back",
        "marketing",
        "email",
        "sent",
    )
    [mail] = notify.mailbox.to("li.na@example.com")
    assert subject(mail) == "好久不见，我们想念您"
    assert mail["List-Unsubscribe"] == f"<https://service.csm.example.com/preferences/{gold}>"
    [task] = await notify.tasks(gold)
    assert (task.kind, task.assignee, task.assignee_role) == ("win_back_call", "am-qian", "manager")
    assert "no purchase for 90 days" in (task.detail or "")

    await notify.settled(iron, 1)
    assert len(notify.mailbox.to("iron@example.com")) == 1, "back to low risk is no occasion"
    assert await notify.tasks(iron) == [], "a manager calls high tiers only"


async def test_a_lapse_that_is_only_a_relabelling_wins_nobody_back(notify: Notify) -> None:
    """Risk moves from an analysis date, a policy apply, imported history or a merge are no news;
    a lapse the recompute noticed (time passed) still earns the win-back offer."""
    relabelled = {
        cause: await notify.register(email=f"{cause}@example.com", marketing=("email",))
        for cause in ("analysis_date", "policy", "imported", "manual")
    }
    lapsed = await notify.register(email="lapsed@example.com", marketing=("email",))
    published = await notify.publish(
        *(
            event(
                "csm.segment.risk_changed.v1", c, previous_risk="low", risk="lost", tier="iron", cause=cause
            )
            for cause, c in relabelled.items()
        ),
        event("csm.segment.risk_changed.v1", lapsed, previous_risk="low", risk="lost", cause="recompute"),
    )
    await notify.consumed(*published)
    [offer] = await notify.settled(lapsed, 1)
    assert offer.playbook == "win_back"
    for cause, customer in relabelled.items():
        assert await notify.notifications(customer) == [], cause


async def test_a_complaint_is_acknowledged_at_once_even_at_night_stating_the_tiers_promise(
    notify: Notify,
) -> None:
    night = datetime(2026, 11, 23, 15, 30, tzinfo=UTC)  # 23:30 in Shanghai: quiet hours
    notify.clock.set(night)
    customer = await notify.register()
    no_phone = await notify.register(
        name="Tom Lee", email="tom@example.com", phone=None, locale="en-US", time_zone="America/New_York"
    )
    complaint, toms = uuid.uuid4(), uuid.uuid4()
    published = await notify.publish(
        event(
            "csm.complaint.opened.v1",
            customer,
            complaint_id=complaint,
            tier="gold",
            opened_at=night,
            first_response_due_at=night + timedelta(hours=2),
        ),
        event(
            "csm.complaint.opened.v1",
            no_phone,
            complaint_id=toms,
            tier="platinum",
            opened_at=night,
            first_response_due_at=night + timedelta(hours=1),
        ),
    )
    await notify.consumed(*published)

    [ack] = await notify.settled(customer, 1)
    assert (ack.playbook, ack.channel, ack.status, ack.urgent) == (
        "complaint_acknowledgement",
        "sms",
        "sent",
        True,
    )
    assert ack.sent_at == night, "urgent: it does not wait for the morning"
    [sms] = notify.http.sms.values()
    reference = str(complaint)[:8].upper()
    assert sms.to == "+8613812345678"
    assert sms.text == f"您的投诉（编号 {reference}）已收到，由专人负责。我们将在 2 小时内答复您。"
    assert "承诺在 2 小时内（11月24日 01:30前）答复您" in ack.body, "the promise in the customer's local time"

    await notify.settled(no_phone, 1)
    [mail] = notify.mailbox.to("tom@example.com")
    assert subject(mail) == f"We have received your complaint [#C-{str(toms)[:8].upper()}]"
    assert "within 1 hour (by 23 Nov 11:30)" in text(mail), "one hour, in New York time"


async def test_an_escalation_alerts_staff_over_a_signed_webhook_and_gives_the_level_that_must_act_a_task(
    notify: Notify,
) -> None:
    await notify.register_webhook()
    customer = await notify.register()
    complaint = uuid.uuid4()
    published = await notify.publish(
        event("csm.complaint.opened.v1", customer, complaint_id=complaint, first_owner="agent-7"),
        event(
            "csm.complaint.escalated.v1",
            customer,
            complaint_id=complaint,
            level=2,
            level_name="manager",
            must_act="manager",
            reason="the customer asked for a manager",
            first_owner="agent-7",  # complaints names the same first owner on every event
        ),
    )
    await notify.consumed(*published)
    found = await notify.settled(customer, 2)
    alert = next(n for n in found if n.playbook == "complaint_escalation_alert")
    assert (alert.channel, alert.webhook, alert.status) == ("webhook", "complaint-alerts", "sent")
    [payload] = notify.http.webhooks.values()
    assert notify.http.rejected_signatures == 0, "the reference implementation verified the signature"
    assert payload["type"] == "csm.alert" and payload["customer_id"] == str(customer)
    assert payload["title"] == f"投诉升级：{str(complaint)[:8].upper()}（第 2 级，manager）"
    assert "首问负责人：agent-7" in payload["body"]
    [task] = await notify.tasks(customer)
    assert (task.kind, task.assignee, task.assignee_role) == ("escalation_review", None, "manager")


async def test_a_breached_promise_alerts_staff_and_gives_the_first_owner_a_task(notify: Notify) -> None:
    await notify.register_webhook()
    customer = await notify.register()
    complaint = uuid.uuid4()
    published = await notify.publish(
        event(
            "csm.complaint.sla_breached.v1",
            customer,
            complaint_id=complaint,
            target="first_response",
            first_owner="agent-9",
            due_at=notify.clock.now(),
        ),
    )
    await notify.consumed(*published)
    [alert] = await notify.settled(customer, 1)
    assert (alert.playbook, alert.status) == ("sla_breach_alert", "sent")
    [payload] = notify.http.webhooks.values()
    assert payload["title"] == f"投诉超时：{str(complaint)[:8].upper()}"
    [task] = await notify.tasks(customer)
    assert (task.kind, task.assignee, task.assignee_role) == ("breach_follow_up", "agent-9", "supervisor")


async def test_a_satisfaction_survey_goes_a_day_after_resolution_unless_the_complaint_reopened(
    notify: Notify,
) -> None:
    customer = await notify.register()
    reopened_customer = await notify.register(email="again@example.com")
    resolved, reopened = uuid.uuid4(), uuid.uuid4()
    published = await notify.publish(
        event("csm.complaint.resolved.v1", customer, complaint_id=resolved),
        event("csm.complaint.resolved.v1", reopened_customer, complaint_id=reopened),
    )
    await notify.consumed(*published)
    await notify.advance(timedelta(hours=23))
    published = await notify.publish(
        event("csm.complaint.reopened.v1", reopened_customer, complaint_id=reopened)
    )
    await notify.consumed(*published)
    await notify.scan()
    assert await notify.notifications(customer) == [], "the survey waits a day"

    await notify.advance(timedelta(hours=1))
    [survey] = await notify.settled(customer, 1)
    assert (survey.playbook, survey.step, survey.channel) == ("complaint_survey", "survey", "email")
    [mail] = notify.mailbox.to("li.na@example.com")
    assert subject(mail) == "您对我们的处理满意吗？"
    assert f"https://service.csm.example.com/surveys/{resolved}" in text(mail)
    await notify.scan()
    assert await notify.notifications(reopened_customer) == [], "a reopened complaint gets no survey"


async def test_a_poor_survey_answer_is_followed_up_by_the_first_owner(notify: Notify) -> None:
    customer = await notify.register()
    happy = await notify.register(email="happy@example.com")
    complaint = uuid.uuid4()
    published = await notify.publish(
        event("csm.complaint.opened.v1", customer, complaint_id=complaint, first_owner="agent-3"),
        event("csm.complaint.survey_answered.v1", customer, complaint_id=complaint, csat=1, poor=True),
        event(
            "csm.complaint.survey_answered.v1", happy, complaint_id=uuid.uuid4(), csat=5, nps=10, poor=False
        ),
    )
    await notify.consumed(*published)
    [task] = await notify.tasks(customer)
    assert (task.kind, task.playbook, task.assignee, task.assignee_role) == (
        "survey_follow_up",
        "poor_survey_follow_up",
        "agent-3",
        "supervisor",
    )
    assert "评分 1" in task.title
    assert await notify.tasks(happy) == []


async def test_every_key_account_gets_one_proactive_visit_task_each_quarter(notify: Notify) -> None:
    key_account = await notify.register(account_manager="am-sun")
    ordinary = await notify.register(email="ordinary@example.com")
    published = await notify.publish(
        event(
            "csm.segment.tier_changed.v1",
            key_account,
            previous_tier="gold",
            tier="platinum",
            key_account=True,
        ),
        event("csm.segment.tier_changed.v1", ordinary, previous_tier="iron", tier="gold", key_account=False),
    )
    await notify.consumed(*published)
    await notify.advance(timedelta(days=2))  # the scanner looks again each day of the quarter
    await notify.scan()

    async def visits(count: int) -> list[Task]:
        found = [t for t in await notify.tasks(key_account) if t.kind == "on_site_visit"]
        assert len(found) == count
        return found

    [visit] = await eventually(lambda: visits(1))
    assert (visit.assignee, visit.assignee_role, visit.playbook) == ("am-sun", "manager", "key_account_visit")
    assert "2026-Q4" in visit.title
    await notify.advance(timedelta(days=20))
    await notify.scan()
    await visits(1)

    notify.clock.set(datetime(2027, 1, 1, 1, 0, tzinfo=UTC))  # 09:00 on 1 January in Shanghai
    found = await eventually(lambda: visits(2))
    assert "2027-Q1" in found[1].title
    assert [t for t in await notify.tasks(ordinary) if t.kind == "on_site_visit"] == []


async def test_an_announcement_reaches_interested_customers_with_a_personal_recommendation(
    notify: Notify,
) -> None:
    by_email = await notify.register(
        name="王芳", email="wang@example.com", interests=("Green Tea", "tea"), marketing=("email",)
    )
    by_sms = await notify.register(
        name="Sam", email=None, locale="en", interests=("TEA",), marketing=("sms",)
    )
    no_consent = await notify.register(email="quiet@example.com", interests=("tea",))
    elsewhere = await notify.register(email="coffee@example.com", interests=("coffee",), marketing=("email",))
    await notify.consumed(
        *await notify.publish(
            event("csm.segment.tier_changed.v1", by_email, previous_tier="iron", tier="gold")
        )
    )

    response = await notify.client.post(
        "/announcements",
        json={"topic": "Tea", "title": "新茶上市", "body": "今年的明前龙井到了。"},
        headers=auth(Role.manager, subject="marketing-lead"),
    )
    assert response.status_code == 202, response.text
    announcement = response.json()

    async def matched() -> dict[str, object]:
        found = await notify.client.get(f"/announcements/{announcement['id']}", headers=auth())
        body = found.json()
        assert body["state"] == "matched", body
        return body  # type: ignore[no-any-return]

    progress = await eventually(matched)
    assert (progress["matched"], progress["skipped"]) == (2, 1)
    news = [n for n in await notify.settled(by_email, 2) if n.playbook == "interest_match"]
    assert [n.channel for n in news] == ["email"]
    mail = next(m for m in notify.mailbox.to("wang@example.com") if subject(m) == "新茶上市")
    body = text(mail)
    assert "王芳" in body and "「Tea」" in body and "今年的明前龙井到了。" in body
    assert "会员专属折扣与积分" in body, "the recommendation fits the customer's tier (gold)"
    [sms_news] = await notify.settled(by_sms, 1)
    assert sms_news.channel == "sms"
    [sms] = notify.http.sms.values()
    assert sms.text.startswith("News on Tea: 新茶上市.")
    assert await notify.notifications(no_consent) == []
    assert await notify.notifications(elsewhere) == []
