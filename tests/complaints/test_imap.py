"""IMAP polling of the service mailbox against a real IMAP server (Dovecot, started by the test):
mail is filed as from the SMTP listener, marked seen only after, and never stored twice."""

from __future__ import annotations

import asyncio
import imaplib
import uuid
from collections.abc import Iterator
from email.message import EmailMessage

import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from services.complaints.imap import MailboxPoller, MailboxUnavailable
from services.complaints.models import ConversationMessage
from services.complaints.settings import ComplaintsSettings
from shared.clock import ManualClock
from tests.complaints import imap_server
from tests.complaints.imap_server import Dovecot
from tests.complaints.test_mail import T0, complaints_of, registered, rows
from tests.harness import RunningService, Stack

pytestmark = pytest.mark.skipif(
    not imap_server.available(), reason="needs Dovecot: apt-get install dovecot-imapd"
)


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    server = Dovecot().start()
    yield server
    server.stop()


@pytest.fixture
async def complaints(stack: Stack) -> RunningService:
    return await stack.start("complaints", clock=ManualClock(T0), scan_interval_seconds=3600)


def poller(
    complaints: RunningService, server: Dovecot, password: str = imap_server.PASSWORD
) -> MailboxPoller:
    runtime = complaints.runtime
    settings = runtime.settings
    assert isinstance(settings, ComplaintsSettings)
    settings = settings.model_copy(
        update={
            "imap_host": "127.0.0.1",
            "imap_port": server.port,
            "imap_security": "none",
            "imap_username": imap_server.USER,
            "imap_password": SecretStr(password),
        }
    )
    return MailboxPoller(db=runtime.db, clock=runtime.clock, settings=settings)


def imap_session(server: Dovecot) -> imaplib.IMAP4:
    client = imaplib.IMAP4("127.0.0.1", server.port)
    client.login(imap_server.USER, imap_server.PASSWORD)
    client.select("INBOX")
    return client


def append(server: Dovecot, message: EmailMessage) -> None:
    client = imap_session(server)
    try:
        client.append("INBOX", None, None, message.as_bytes())
    finally:
        client.logout()


def unseen(server: Dovecot) -> list[bytes]:
    client = imap_session(server)
    try:
        return client.uid("SEARCH", "UNSEEN")[1][0].split()  # type: ignore[no-any-return]
    finally:
        client.logout()


def mark_unseen(server: Dovecot) -> None:
    client = imap_session(server)
    try:
        client.uid("STORE", "1:*", "-FLAGS", "(\\Seen)")
    finally:
        client.logout()


def mail(subject: str, **headers: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Li Na <li.na@example.com>"
    message["To"] = "service@csm.example.com"
    message["Subject"] = subject
    message["Message-ID"] = f"<{uuid.uuid4()}@example.com>"
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content("The vase was in pieces.")
    return message


async def test_unseen_mail_is_filed_then_marked_seen_and_a_reread_stores_nothing_twice(
    stack: Stack, complaints: RunningService, dovecot: Dovecot
) -> None:
    customer = await registered(stack, complaints)
    await asyncio.to_thread(append, dovecot, mail("The parcel arrived broken"))
    await asyncio.to_thread(append, dovecot, mail("Automatic reply", Auto_Submitted="auto-replied"))
    assert len(await asyncio.to_thread(unseen, dovecot)) == 2

    reader = poller(complaints, dovecot)
    assert await reader.poll_once() == 2
    [complaint] = await complaints_of(complaints, customer)
    assert complaint["channel"] == "email"
    assert await asyncio.to_thread(unseen, dovecot) == [], "filed, so marked seen (the auto-reply too)"
    assert await reader.poll_once() == 0

    # A poller that died after filing and before marking seen reads the mail again: stored once.
    await asyncio.to_thread(mark_unseen, dovecot)
    assert await reader.poll_once() == 2
    assert len(await complaints_of(complaints, customer)) == 1
    assert len(await rows(complaints, sa.select(ConversationMessage))) == 1


async def test_a_refused_login_is_a_named_failure(complaints: RunningService, dovecot: Dovecot) -> None:
    with pytest.raises(MailboxUnavailable, match="login"):
        await poller(complaints, dovecot, password="wrong").poll_once()
