"""Complaints by e-mail: a real SMTP client sends to the service's listener, on a real broker.

A known customer's mail opens a complaint; replies join it; repeats, auto-replies and bounces change
nothing; strangers wait in triage; attachments are kept within limits; erasure takes the mail too.
"""

from __future__ import annotations

import json
import uuid
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import pytest
import sqlalchemy as sa

from services.complaints.models import ConversationMessage, CustomerAddress, MailAttachment
from shared.broker import free_port
from shared.clock import ManualClock
from shared.db import Database
from shared.events import envelope_for
from shared.events.customer import TOPIC as CUSTOMER_TOPIC
from shared.events.customer import (
    ContactChanged,
    CustomerErased,
    CustomerKind,
    CustomerProfile,
    CustomerRegistered,
    CustomerUpdated,
)
from shared.roles import Role
from tests.complaints.helpers import TUESDAY_10_SHANGHAI, move, open_complaint, staff, staged, staged_types
from tests.harness import RunningService, Stack, eventually
from tests.shared.bus_helpers import produce_events

T0 = TUESDAY_10_SHANGHAI
MAILBOX = "service@csm.example.com"
SUPERVISOR = staff(Role.supervisor, "sup-1")


@pytest.fixture
async def complaints(stack: Stack) -> RunningService:
    return await stack.start(
        "complaints",
        clock=ManualClock(T0),
        scan_interval_seconds=3600,
        mail_listen_port=free_port(),
        mail_max_attachment_bytes=1000,
        mail_max_message_bytes=20_000,
    )


def mail(
    sender: str = "li.na@example.com",
    subject: str = "包裹损坏 The parcel arrived broken",
    body: str = "The vase was in pieces.",
    **headers: str,
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"Li Na <{sender}>"
    message["To"] = MAILBOX
    message["Subject"] = subject
    message["Message-ID"] = headers.pop("message_id", f"<{uuid.uuid4()}@example.com>")
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message


async def send(complaints: RunningService, message: EmailMessage, *, sender: str | None = None) -> Any:
    """Deliver ``message`` over SMTP; ``sender`` is the envelope's MAIL FROM ("" for the null sender)."""
    port = complaints.runtime.settings.mail_listen_port  # type: ignore[attr-defined]
    envelope_sender = sender if sender is not None else str(message["From"].addresses[0].addr_spec)
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port) as client:
        return await client.sendmail(envelope_sender, [MAILBOX], message.as_bytes())


async def registered(
    stack: Stack, complaints: RunningService, email: str | None = "Li.Na@Example.com"
) -> uuid.UUID:
    customer = uuid.uuid4()
    profile = CustomerProfile(kind=CustomerKind.individual, name="李娜", email=email)
    event = CustomerRegistered(customer_id=customer, profile=profile, registered_at=T0)
    await produce_events(
        stack.bootstrap, stack.prefix + CUSTOMER_TOPIC, [envelope_for(event, source="/tests")]
    )

    async def known() -> None:
        assert await rows(
            complaints, sa.select(CustomerAddress).where(CustomerAddress.customer_id == customer)
        )

    await eventually(known)
    return customer


async def rows(complaints: RunningService, query: Any) -> list[Any]:
    db = Database(complaints.database_url)
    try:
        async with db.read() as session:
            return list((await session.scalars(query)).all())
    finally:
        await db.dispose()


async def complaints_of(complaints: RunningService, customer: uuid.UUID) -> list[dict[str, Any]]:
    answer = await complaints.client.get(
        "/complaints", params={"customer_id": str(customer)}, headers=staff()
    )
    assert answer.status_code == 200
    return answer.json()["items"]  # type: ignore[no-any-return]


async def conversation(
    complaints: RunningService, complaint_id: str, headers: Any = None
) -> list[dict[str, Any]]:
    answer = await complaints.client.get(
        f"/complaints/{complaint_id}/conversation", headers=headers or staff()
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]  # type: ignore[no-any-return]


async def test_a_known_customers_mail_opens_an_email_complaint_and_replies_join_it(
    stack: Stack, complaints: RunningService
) -> None:
    customer = await registered(stack, complaints)
    first = mail(message_id="<first@example.com>")
    await send(complaints, first)
    [complaint] = await complaints_of(complaints, customer)
    assert (complaint["channel"], complaint["category"], complaint["first_owner"]) == (
        "email",
        "other",
        "mailbox",
    )
    assert "The vase was in pieces." in complaint["description"]
    reference = complaint["id"][:8].upper()

    # A reply by In-Reply-To, another by the reference in its subject only: both join.
    await send(
        complaints, mail(subject="Re: the parcel", body="Photos attached.", In_Reply_To="<first@example.com>")
    )
    await send(complaints, mail(subject=f"Still waiting [#C-{reference}]", body="Any news?"))
    assert len(await complaints_of(complaints, customer)) == 1
    messages = await conversation(complaints, complaint["id"])
    assert [(m["kind"], m["body"]) for m in messages] == [
        ("customer", "The vase was in pieces."),
        ("customer", "Photos attached."),
        ("customer", "Any news?"),
    ]
    assert messages[0]["sender"] == "li.na@example.com"

    # The reference counts only from the complaint's own customer: from a stranger it is triaged.
    await send(complaints, mail(sender="stranger@example.org", subject=f"Re: [#C-{reference}]"))
    assert len(await conversation(complaints, complaint["id"])) == 3
    triage = (await complaints.client.get("/mail-triage", headers=staff())).json()["items"]
    assert [(m["sender"], m["triage"]) for m in triage] == [("stranger@example.org", "unknown sender")]


async def test_the_same_message_delivered_twice_is_stored_once(
    stack: Stack, complaints: RunningService
) -> None:
    customer = await registered(stack, complaints)
    message = mail(message_id="<retried@example.com>")
    await send(complaints, message)
    await send(complaints, message)
    [complaint] = await complaints_of(complaints, customer)
    assert len(await conversation(complaints, complaint["id"])) == 1
    stored = await rows(
        complaints,
        sa.select(ConversationMessage).where(ConversationMessage.message_id == "<retried@example.com>"),
    )
    assert len(stored) == 1


@pytest.mark.parametrize(
    ("headers", "envelope_sender"),
    [
        ({"Auto_Submitted": "auto-replied"}, None),
        ({"Precedence": "bulk"}, None),
        ({"Precedence": "junk"}, None),
        ({"Precedence": "list"}, None),
        ({"X_Autoreply": "yes"}, None),
        ({}, ""),  # the null sender: a bounce
    ],
)
async def test_auto_replies_and_bounces_open_nothing_and_are_not_answered(
    stack: Stack, complaints: RunningService, headers: dict[str, str], envelope_sender: str | None
) -> None:
    customer = await registered(stack, complaints)
    await send(complaints, mail(subject="Out of office", **headers), sender=envelope_sender)
    assert await complaints_of(complaints, customer) == []
    assert await rows(complaints, sa.select(ConversationMessage)) == []
    # A person's mail from the same address is taken, so the test above is about the headers.
    await send(complaints, mail())
    assert len(await complaints_of(complaints, customer)) == 1


async def test_an_auto_reply_to_a_conversation_does_not_join_it(
    stack: Stack, complaints: RunningService
) -> None:
    customer = await registered(stack, complaints)
    await send(complaints, mail(message_id="<asked@example.com>"))
    [complaint] = await complaints_of(complaints, customer)
    await send(complaints, mail(In_Reply_To="<asked@example.com>", Auto_Submitted="auto-replied"))
    assert len(await conversation(complaints, complaint["id"])) == 1


async def test_an_unknown_sender_waits_in_triage_until_a_person_places_the_mail(
    stack: Stack, complaints: RunningService
) -> None:
    await send(complaints, mail(sender="nobody@example.org", body="My washing machine leaks."))
    [waiting] = (await complaints.client.get("/mail-triage", headers=staff())).json()["items"]
    assert (waiting["complaint_id"], waiting["triage"]) == (None, "unknown sender")
    customer = uuid.uuid4()
    placed = await complaints.client.post(
        f"/mail-triage/{waiting['id']}/complaint", json={"customer_id": str(customer)}, headers=staff()
    )
    assert placed.status_code == 201, placed.text
    assert (placed.json()["customer_id"], placed.json()["channel"]) == (str(customer), "email")
    assert (await complaints.client.get("/mail-triage", headers=staff())).json()["items"] == []
    [message] = await conversation(complaints, placed.json()["id"])
    assert message["body"] == "My washing machine leaks."
    again = await complaints.client.post(
        f"/mail-triage/{waiting['id']}/complaint", json={"customer_id": str(customer)}, headers=staff()
    )
    assert again.status_code == 404


async def test_an_address_two_customers_share_is_triaged(stack: Stack, complaints: RunningService) -> None:
    await registered(stack, complaints, email="family@example.com")
    await registered(stack, complaints, email="family@example.com")
    await send(complaints, mail(sender="family@example.com"))
    [waiting] = (await complaints.client.get("/mail-triage", headers=staff())).json()["items"]
    assert waiting["triage"] == "several customers share the address"


async def test_a_changed_address_is_followed_and_the_old_one_no_longer_opens_complaints(
    stack: Stack, complaints: RunningService
) -> None:
    customer = await registered(stack, complaints)
    profile = CustomerProfile(kind=CustomerKind.individual, name="李娜", email="li.na@new.example.com")
    updated = CustomerUpdated(customer_id=customer, profile=profile, changed=("email",))
    await produce_events(
        stack.bootstrap, stack.prefix + CUSTOMER_TOPIC, [envelope_for(updated, source="/tests")]
    )

    async def moved() -> None:
        query = sa.select(CustomerAddress.email).where(CustomerAddress.customer_id == customer)
        assert await rows(complaints, query) == ["li.na@new.example.com"]

    await eventually(moved)
    await send(complaints, mail(sender="li.na@example.com"))
    assert await complaints_of(complaints, customer) == []
    await send(complaints, mail(sender="LI.NA@new.example.com"))
    assert len(await complaints_of(complaints, customer)) == 1


async def test_attachments_are_kept_by_reference_within_the_limits(
    stack: Stack, complaints: RunningService
) -> None:
    customer = await registered(stack, complaints)
    message = mail()
    message.add_attachment(b"\x89PNG small photo", maintype="image", subtype="png", filename="photo.png")
    message.add_attachment(b"x" * 5000, maintype="application", subtype="pdf", filename="huge.pdf")
    await send(complaints, message)
    [complaint] = await complaints_of(complaints, customer)
    [entry] = await conversation(complaints, complaint["id"])
    kept, refused = entry["attachments"]
    assert (kept["name"], kept["media_type"], kept["size"], kept["refused"]) == (
        "photo.png",
        "image/png",
        16,
        None,
    )
    assert (refused["name"], refused["refused"], refused["uri"]) == ("huge.pdf", "too large", None)
    assert [a["uri"] for a in complaint["attachments"]] == [kept["uri"]]
    path = "/" + kept["uri"].split("/", 3)[3]
    download = await complaints.client.get(path, headers=staff())
    assert download.status_code == 200
    assert download.content == b"\x89PNG small photo"
    assert download.headers["content-disposition"] == "attachment"
    assert (await complaints.client.get(path)).status_code == 401

    # A mail larger than the listener takes is refused at the door, and nothing is stored.
    big = mail(body="y" * 30_000)
    with pytest.raises(aiosmtplib.SMTPResponseException) as refused_mail:
        await send(complaints, big)
    assert refused_mail.value.code == 552
    assert len(await rows(complaints, sa.select(ConversationMessage))) == 1


async def test_erasure_takes_the_customers_mail_addresses_and_files(
    stack: Stack, complaints: RunningService
) -> None:
    # Written before the customer service had announced them: it waits in triage.
    await send(complaints, mail(body="My flat number is 3."))
    customer = await registered(stack, complaints)
    message = mail(body="I live at 12 Garden Road.")
    message.add_attachment(b"id card", maintype="image", subtype="jpeg", filename="id.jpg")
    await send(complaints, message)
    [complaint] = await complaints_of(complaints, customer)
    erased = envelope_for(CustomerErased(customer_id=customer, erased_at=T0), source="/tests")
    await produce_events(stack.bootstrap, stack.prefix + CUSTOMER_TOPIC, [erased])

    async def purged() -> None:
        [entry] = await conversation(complaints, complaint["id"])
        assert (entry["body"], entry["sender"], entry["subject"], entry["attachments"]) == (
            "",
            None,
            None,
            [],
        )

    await eventually(purged)
    assert await rows(complaints, sa.select(CustomerAddress)) == []
    assert await rows(complaints, sa.select(MailAttachment)) == []
    [waiting] = (await complaints.client.get("/mail-triage", headers=staff())).json()["items"]
    assert (waiting["body"], waiting["sender"]) == ("", None), "their mail in triage is theirs too"
    # The address is no longer known: a mail from it now waits in triage.
    await send(complaints, mail())
    assert len((await complaints.client.get("/mail-triage", headers=staff())).json()["items"]) == 2


async def test_an_agent_reply_is_threaded_and_is_the_first_response(
    stack: Stack, complaints: RunningService
) -> None:
    customer = await registered(stack, complaints)
    await send(complaints, mail(message_id="<first@example.com>", subject="Broken vase"))
    [complaint] = await complaints_of(complaints, customer)
    first_response = next(c for c in complaint["clocks"] if c["target"] == "first_response")
    assert first_response["met_at"] is None and complaint["status"] == "new"

    not_mine = await complaints.client.post(
        f"/complaints/{complaint['id']}/replies", json={"body": "Hello"}, headers=staff(subject="agent-2")
    )
    assert not_mine.status_code == 403
    answer = await complaints.client.post(
        f"/complaints/{complaint['id']}/replies",
        json={"body": "A new vase is on its way."},
        headers=SUPERVISOR,
    )
    assert answer.status_code == 201, answer.text
    reply = answer.json()
    reference = complaint["id"][:8].upper()
    assert reply["subject"] == f"Re: Broken vase [#C-{reference}]"
    assert reply["in_reply_to"] == "<first@example.com>"
    assert reply["message_id"].endswith("@csm.example.com>")

    current = (await complaints.client.get(f"/complaints/{complaint['id']}", headers=staff())).json()
    assert current["status"] == "acknowledged"
    assert current["first_response_at"] == T0.isoformat().replace("+00:00", "Z")
    first_response = next(c for c in current["clocks"] if c["target"] == "first_response")
    assert first_response["met_at"] is not None

    [replied] = [body for kind, body in await staged(complaints) if kind == "csm.complaint.replied.v1"]
    data = json.loads(replied)["data"]
    assert data["thread"] == {
        "message_id": reply["message_id"],
        "in_reply_to": "<first@example.com>",
        "references": ["<first@example.com>"],
    }
    assert data["channel"] == "email"

    # The customer's answer to the reply joins by In-Reply-To; the next reply references both.
    await send(
        complaints,
        mail(
            message_id="<answer@example.com>",
            subject=f"Re: Broken vase [#C-{reference}]",
            In_Reply_To=reply["message_id"],
        ),
    )
    second = await complaints.client.post(
        f"/complaints/{complaint['id']}/replies", json={"body": "Tracking: SF123"}, headers=SUPERVISOR
    )
    assert second.json()["in_reply_to"] == "<answer@example.com>"
    assert second.json()["references"] == ["<first@example.com>", reply["message_id"], "<answer@example.com>"]
    assert len(await complaints_of(complaints, customer)) == 1


async def test_internal_notes_are_for_staff_only(stack: Stack, complaints: RunningService) -> None:
    complaint = await open_complaint(complaints)
    note = await complaints.client.post(
        f"/complaints/{complaint['id']}/notes", json={"body": "Customer sounded upset."}, headers=staff()
    )
    assert note.status_code == 201, note.text
    assert [m["kind"] for m in await conversation(complaints, complaint["id"])] == ["note"]
    assert await conversation(complaints, complaint["id"], headers=staff(Role.service, "crm")) == []
    assert "complaint.replied" not in str(await staged_types(complaints))
    current = (await complaints.client.get(f"/complaints/{complaint['id']}", headers=staff())).json()
    assert current["first_response_at"] is None, "a note is not a response to the customer"


async def test_a_named_contacts_address_reaches_the_business_customer_until_the_contact_goes(
    stack: Stack, complaints: RunningService
) -> None:
    company, contact = uuid.uuid4(), uuid.uuid4()

    async def contact_changed(email: str | None, *, removed: bool = False) -> None:
        event = ContactChanged(
            customer_id=company, contact_id=contact, email=email, removed=removed, changed_at=T0
        )
        await produce_events(
            stack.bootstrap, stack.prefix + CUSTOMER_TOPIC, [envelope_for(event, source="/tests")]
        )

    await contact_changed("zhang.wei@acme.example.com")

    async def known() -> None:
        query = sa.select(CustomerAddress.email).where(CustomerAddress.customer_id == company)
        assert await rows(complaints, query) == ["zhang.wei@acme.example.com"]

    await eventually(known)
    await send(complaints, mail(sender="zhang.wei@acme.example.com"))
    assert len(await complaints_of(complaints, company)) == 1

    await contact_changed(None, removed=True)

    async def forgotten() -> None:
        assert (
            await rows(complaints, sa.select(CustomerAddress).where(CustomerAddress.customer_id == company))
            == []
        )

    await eventually(forgotten)
    await send(complaints, mail(sender="zhang.wei@acme.example.com", subject="Another matter"))
    assert len(await complaints_of(complaints, company)) == 1
    assert len((await complaints.client.get("/mail-triage", headers=staff())).json()["items"]) == 1


async def test_under_the_new_customer_policy_an_unknown_sender_becomes_a_customer(stack: Stack) -> None:
    complaints = await stack.start(
        "complaints",
        clock=ManualClock(T0),
        scan_interval_seconds=3600,
        mail_listen_port=free_port(),
        mail_unknown_sender="new_customer",
    )
    customer_service = await stack.start("customer")
    await send(complaints, mail(sender="zhou.min@example.org", body="The heater is broken."))
    await send(complaints, mail(sender="Zhou.Min@example.org", subject="And the fan", body="The fan too."))
    [introduced] = [
        json.loads(body)["data"] for kind, body in await staged(complaints) if "sender_introduced" in kind
    ]
    customer = uuid.UUID(introduced["customer_id"])
    assert (introduced["name"], introduced["email"]) == ("Li Na", "zhou.min@example.org")
    assert len(await complaints_of(complaints, customer)) == 2, "the second mail found the new customer"
    assert (await complaints.client.get("/mail-triage", headers=staff())).json()["items"] == []

    async def registered_by_the_customer_service() -> None:
        found = await customer_service.client.get(f"/customers/{customer}", headers=staff())
        assert found.status_code == 200
        assert (found.json()["name"], found.json()["email"]) == ("Li Na", "zhou.min@example.org")

    await eventually(registered_by_the_customer_service)


async def test_the_customers_answer_puts_a_complaint_waiting_on_them_back_to_work(
    stack: Stack, complaints: RunningService
) -> None:
    customer = await registered(stack, complaints)
    await send(complaints, mail(message_id="<first@example.com>"))
    [complaint] = await complaints_of(complaints, customer)
    for status in ("acknowledged", "in_progress", "waiting_on_customer"):
        moved = await move(complaints, complaint["id"], status, headers=SUPERVISOR)
        assert moved.status_code == 200, moved.text
    await send(complaints, mail(body="Here is the serial number.", In_Reply_To="<first@example.com>"))
    current = (await complaints.client.get(f"/complaints/{complaint['id']}", headers=staff())).json()
    assert current["status"] == "in_progress"


async def test_mail_from_the_service_mailbox_itself_is_ignored(
    stack: Stack, complaints: RunningService
) -> None:
    await send(complaints, mail(sender=MAILBOX))
    assert await rows(complaints, sa.select(ConversationMessage)) == []


async def test_a_dismissed_triaged_mail_is_emptied_and_does_not_come_back(complaints: RunningService) -> None:
    spam = mail(sender="offers@spam.example", subject="Cheap watches")
    spam.add_attachment(b"payload", maintype="application", subtype="zip", filename="watches.zip")
    await send(complaints, spam)
    [waiting] = (await complaints.client.get("/mail-triage", headers=staff())).json()["items"]
    dismissed = await complaints.client.delete(f"/mail-triage/{waiting['id']}", headers=staff())
    assert dismissed.status_code == 204
    assert (await complaints.client.get("/mail-triage", headers=staff())).json()["items"] == []
    assert await rows(complaints, sa.select(MailAttachment)) == []
    [kept] = await rows(complaints, sa.select(ConversationMessage.body))
    assert kept == ""
    await send(complaints, spam)  # delivered again: known by its Message-ID, not listed again
    assert (await complaints.client.get("/mail-triage", headers=staff())).json()["items"] == []
    again = await complaints.client.delete(f"/mail-triage/{waiting['id']}", headers=staff())
    assert again.status_code == 404
