"""An agent's reply on a complaint (``complaint.replied``), sent by notify on the customer's channel:
in the customer's mail thread for a mail complaint, by SMS for a phone one, once however often the
event arrives."""

from __future__ import annotations

import uuid

from tests.notify.fixtures import http_receiver, mailbox, notify
from tests.notify.support import Notify, event, subject, text

__all__ = ["http_receiver", "mailbox", "notify"]

THREAD = {
    "message_id": "<reply-1@csm.example.com>",
    "in_reply_to": "<asked@example.com>",
    "references": ["<first@example.com>", "<asked@example.com>"],
}


async def test_a_reply_to_a_mail_complaint_goes_in_the_customers_thread_once(notify: Notify) -> None:
    customer = await notify.register()
    replied = event(
        "csm.complaint.replied.v1",
        customer,
        complaint_id=uuid.uuid4(),
        reply_id=uuid.uuid4(),
        channel="email",
        subject="Re: Broken vase [#C-3F2A1B4C]",
        body="A new vase is on its way.",
        thread=THREAD,
    )
    # Delivered twice (a redelivery after a crash, say): one message.
    await notify.consumed(*await notify.publish(replied, replied))
    [sent] = await notify.settled(customer, 1)
    assert (sent.playbook, sent.channel, sent.purpose) == ("complaint_reply", "email", "service")
    [mail] = notify.mailbox.to("li.na@example.com")
    assert subject(mail) == "Re: Broken vase [#C-3F2A1B4C]"
    assert mail["Message-ID"] == "<reply-1@csm.example.com>"
    assert mail["In-Reply-To"] == "<asked@example.com>"
    assert str(mail["References"]) == "<first@example.com> <asked@example.com>"
    assert mail["Auto-Submitted"] is None
    assert "A new vase is on its way." in text(mail)
    assert len(notify.mailbox.accepted) == 1


async def test_a_reply_to_a_phone_complaint_goes_by_sms(notify: Notify) -> None:
    customer = await notify.register()
    replied = event(
        "csm.complaint.replied.v1",
        customer,
        channel="phone",
        subject="您的投诉 [#C-3F2A1B4C]",
        body="工程师明天上午上门。",
        thread=THREAD,
    )
    await notify.consumed(*await notify.publish(replied))
    [sent] = await notify.settled(customer, 1)
    assert sent.channel == "sms"
    [sms] = notify.http.sms.values()
    assert sms.text == "您的投诉 [#C-3F2A1B4C] 工程师明天上午上门。"
    assert notify.mailbox.messages() == []
