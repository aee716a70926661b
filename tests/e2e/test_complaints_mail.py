"""A complaint by e-mail round the whole running system (``csm up``): a customer's mail to the SMTP
listener opens a complaint, notify acknowledges it, the customer's reply to the acknowledgement joins
it, the agent's answer goes out threaded and stops the first-response clock, and the customer's
answer to that joins the same complaint; repeats and auto-replies change nothing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
import httpx
import pytest

from services.registry import SERVICES
from shared.roles import Role
from tests.e2e.system import System, count
from tests.harness import Databases, auth, eventually
from tests.notify.receivers import Mailbox

pytestmark = pytest.mark.e2e

CUSTOMER = "wang.fang@example.com"
MAILBOX = "service@csm.example.com"


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    running = Mailbox().start()
    yield running
    running.stop()


def customer_mail(subject: str, body: str, **headers: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"Wang Fang <{CUSTOMER}>"
    message["To"] = MAILBOX
    message["Subject"] = subject
    message["Message-ID"] = f"<{uuid.uuid4()}@example.com>"
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message


async def test_a_mail_complaint_round_trip_keeps_one_thread_and_one_complaint(
    tmp_path: Path, databases: Databases, mailbox: Mailbox
) -> None:
    urls = {name: await databases.create(name, migrate=False) for name in SERVICES}
    system = System(tmp_path, urls)
    system.env["CSM_NOTIFY_SMTP_PORT"] = str(mailbox.port)
    system.start()

    async def deliver(message: EmailMessage, sender: str = CUSTOMER) -> None:
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=system.mail_port) as smtp:
            await smtp.sendmail(sender, [MAILBOX], message.as_bytes())

    try:
        await system.wait_ready()
        async with httpx.AsyncClient(timeout=10, headers=auth()) as client:
            complaints = system.url("complaints")
            created = await client.post(
                f"{system.url('customer')}/customers",
                json={"name": "王芳", "email": "Wang.Fang@example.com", "locale": "en-US"},
            )
            assert created.status_code == 201, created.text
            customer_id = created.json()["id"]

            async def known_to_complaints_and_notify() -> None:
                assert await count(urls["complaints"], "SELECT count(*) FROM customer_address") == 1
                # Notify has her locale too: a message is worded when it is made, and one made
                # before notify has heard of her is in the company's default language.
                assert await count(urls["notify"], "SELECT count(*) FROM contact WHERE locale = 'en-US'") == 1

            await eventually(known_to_complaints_and_notify)
            first = customer_mail("The washing machine leaks", "Water all over the kitchen floor.")
            await deliver(first)
            await deliver(first)  # the sender's server retried: stored once
            await deliver(customer_mail("Out of office", "Back Monday.", Auto_Submitted="auto-replied"))
            await deliver(customer_mail("Undeliverable", "550 no such user"), sender="")

            listed = await client.get(f"{complaints}/complaints", params={"customer_id": customer_id})
            [complaint] = listed.json()["items"]
            assert (complaint["channel"], complaint["status"]) == ("email", "new")
            reference = complaint["id"][:8].upper()

            async def acknowledged() -> EmailMessage:
                found = mailbox.to(CUSTOMER)
                assert len(found) == 1
                return found[0]

            ack = await eventually(acknowledged)
            assert str(ack["Subject"]) == f"We have received your complaint [#C-{reference}]"

            # The customer answers the acknowledgement: it joins by the reference in the subject.
            answer = customer_mail(
                f"Re: {ack['Subject']}", "It is the model WM-100.", In_Reply_To=ack["Message-ID"]
            )
            await deliver(answer)

            async def conversation() -> list[dict[str, Any]]:
                found = await client.get(f"{complaints}/complaints/{complaint['id']}/conversation")
                return found.json()["items"]  # type: ignore[no-any-return]

            assert [m["body"] for m in await conversation()] == [
                "Water all over the kitchen floor.",
                "It is the model WM-100.",
            ]

            # A supervisor hands the mailbox's complaint to an agent, who answers: notify mails the
            # answer in the customer's thread, and the first-response clock stops.
            assigned = await client.post(
                f"{complaints}/complaints/{complaint['id']}/assignment",
                json={"assignee": "agent-7"},
                headers=auth(Role.supervisor, subject="sup-1"),
            )
            assert assigned.status_code == 200, assigned.text
            replied = await client.post(
                f"{complaints}/complaints/{complaint['id']}/replies",
                json={"body": "An engineer will come tomorrow morning."},
                headers=auth(Role.agent, subject="agent-7"),
            )
            assert replied.status_code == 201, replied.text
            reply = replied.json()

            async def reply_mailed() -> EmailMessage:
                found = [m for m in mailbox.to(CUSTOMER) if m["Message-ID"] == reply["message_id"]]
                assert len(found) == 1, [m["Subject"] for m in mailbox.to(CUSTOMER)]
                return found[0]

            mailed = await eventually(reply_mailed)
            # "Re:" the customer's last subject, as a mail client would title it.
            assert str(mailed["Subject"]) == f"Re: We have received your complaint [#C-{reference}]"
            assert mailed["In-Reply-To"] == answer["Message-ID"]
            assert str(mailed["References"]).split() == [first["Message-ID"], answer["Message-ID"]]
            assert mailed["Auto-Submitted"] is None, "a person's reply, which the customer may answer"
            assert "An engineer will come tomorrow morning." in mailed.get_content()

            current = (await client.get(f"{complaints}/complaints/{complaint['id']}")).json()
            assert current["status"] == "acknowledged"
            [first_response] = [c for c in current["clocks"] if c["target"] == "first_response"]
            assert first_response["met_at"] is not None

            # The customer's mail client answers the reply: it threads by In-Reply-To.
            await deliver(
                customer_mail(
                    f"Re: {mailed['Subject']}",
                    "Thank you, I will be in.",
                    In_Reply_To=mailed["Message-ID"],
                    References=f"{mailed['References']} {mailed['Message-ID']}",
                )
            )
            assert [m["kind"] for m in await conversation()] == ["customer", "customer", "reply", "customer"]
            listed = await client.get(f"{complaints}/complaints", params={"customer_id": customer_id})
            assert len(listed.json()["items"]) == 1
            assert await count(urls["complaints"], "SELECT count(*) FROM conversation_message") == 4
    finally:
        system.stop()
