"""Exactly once at the receiver: the same events delivered twice, and notify SIGKILLed mid-send.

The kill lands in the one window a sender cannot close alone: each receiver has taken the
message in (the mail filed, the SMS sent, the webhook handled) but its answer has not reached
notify, so notify's database still says "sending". After the restart the claim's lease runs
out and notify sends again, with the same delivery id; the receivers recognise the repeat
and each customer sees one message. The receivers' own logs show the second delivery really
happened, so the test would fail if the repeat were not recognised.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from services.notify.models import Contact, Notification, Task
from shared.broker import free_port
from shared.db import create_engine
from shared.events import Envelope, Event, envelope_for
from shared.events.notify import TOPIC as NOTIFY_TOPIC
from shared.roles import Role
from tests.harness import Databases, Stack, auth, eventually
from tests.notify.fixtures import http_receiver, mailbox
from tests.notify.receivers import HttpReceiver, Mailbox
from tests.notify.support import event
from tests.shared.bus_helpers import produce_events, read_all

pytestmark = pytest.mark.e2e

__all__ = ["http_receiver", "mailbox"]


class NotifyProcess:
    """``csm serve notify`` as a child process on the test broker, with a real clock."""

    def __init__(
        self, tmp: Path, stack: Stack, database_url: str, mailbox: Mailbox, http: HttpReceiver
    ) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("CSM_")},
            "CSM_ENV": "test",
            "CSM_KAFKA_BOOTSTRAP": stack.bootstrap,
            "CSM_TOPIC_PREFIX": stack.prefix,
            "CSM_KAFKA_SESSION_TIMEOUT_MS": "2000",
            "CSM_KAFKA_HEARTBEAT_INTERVAL_MS": "300",
            "CSM_NOTIFY_DATABASE_URL": database_url,
            "CSM_NOTIFY_PORT": str(self.port),
            "CSM_NOTIFY_SMTP_HOST": "127.0.0.1",
            "CSM_NOTIFY_SMTP_PORT": str(mailbox.port),
            "CSM_NOTIFY_SMS_API_URL": f"{http.url}/sms",
            "CSM_NOTIFY_SMS_API_KEY": http.sms_key,
            "CSM_NOTIFY_WEBHOOK_ALLOWED_NETWORKS": '["127.0.0.0/8"]',
            "CSM_RATE_LIMITS_ENABLED": "false",
            # A claim lapses after five seconds, so the restarted process takes the interrupted sends
            # over soon, and the killed one, held up by the receivers, does not take its own over
            # again first (a one-second lease did, on a loaded machine, giving a third attempt).
            "CSM_NOTIFY_SEND_LEASE_SECONDS": "5",
            "CSM_NOTIFY_SCAN_POLL_SECONDS": "0.1",
            "CSM_NOTIFY_OUTBOX_POLL_SECONDS": "0.2",
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    async def start(self) -> None:
        self.starts += 1
        # Both return at once: the file is the child's log, and the child is awaited over HTTP below.
        log = open(self.tmp / f"notify-{self.starts}.log", "wb")  # noqa: SIM115, ASYNC230
        self.process = subprocess.Popen(  # noqa: ASYNC220
            [sys.executable, "-m", "services.cli", "serve", "notify"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        async with httpx.AsyncClient(timeout=2) as client:
            deadline = asyncio.get_running_loop().time() + 60
            while True:
                assert self.process.poll() is None, self.log_tail()
                try:
                    if (await client.get(f"{self.url}/readyz")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                assert asyncio.get_running_loop().time() < deadline, self.log_tail()
                await asyncio.sleep(0.1)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_tail(self) -> str:
        logs = sorted(self.tmp.glob("notify-*.log"))
        return logs[-1].read_text(errors="replace")[-3000:] if logs else "(no log)"


async def rows(url: str, model: type[Any], *where: Any) -> list[Any]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return list((await connection.execute(sa.select(model.__table__).where(*where))).all())
    finally:
        await engine.dispose()


async def publish_twice(stack: Stack, envelopes: list[Envelope[Event]]) -> None:
    """Every event twice, as a consumer sees after a rebalance or a relay's replay."""
    by_topic: dict[str, list[Envelope[Event]]] = {}
    for envelope in [*envelopes, *envelopes]:
        by_topic.setdefault(envelope.data.topic, []).append(envelope)
    for topic, batch in by_topic.items():
        await produce_events(stack.bootstrap, stack.prefix + topic, batch)


async def test_events_delivered_twice_and_a_kill_mid_send_give_each_message_exactly_once_at_the_receiver(
    tmp_path: Path, stack: Stack, databases: Databases, mailbox: Mailbox, http_receiver: HttpReceiver
) -> None:
    url = await databases.create("notify")
    notify = NotifyProcess(tmp_path, stack, url, mailbox, http_receiver)
    await notify.start()
    try:
        async with httpx.AsyncClient(base_url=notify.url, timeout=5) as client:
            registered = await client.put(
                "/webhooks/complaint-alerts",
                json={"url": f"{http_receiver.url}/hooks/complaint-alerts"},
                headers=auth(Role.admin),
            )
            assert registered.status_code == 200, registered.text
            http_receiver.secrets["complaint-alerts"] = registered.json()["secret"]

        by_mail, by_sms = uuid.uuid4(), uuid.uuid4()
        profiles = {
            by_mail: {"kind": "individual", "name": "Li Na", "email": "li.na@example.com", "phone": None},
            by_sms: {"kind": "individual", "name": "Wang Wei", "email": None, "phone": "+8613900000000"},
        }
        await publish_twice(
            stack,
            [
                envelope_for(event("csm.customer.registered.v1", customer, profile=profile), source="/tests")
                for customer, profile in profiles.items()
            ],
        )

        async def both_known() -> None:
            found = await rows(url, Contact, Contact.known)
            assert len(found) == 2

        await eventually(both_known)
        # Stopped between the two batches, so that the next start reads all the complaint events at once
        # and sends the three messages together.
        notify.stop()

        mail_complaint, sms_complaint = uuid.uuid4(), uuid.uuid4()
        complaint_events = [
            event("csm.complaint.opened.v1", by_mail, complaint_id=mail_complaint),
            event("csm.complaint.opened.v1", by_sms, complaint_id=sms_complaint),
            event("csm.complaint.escalated.v1", by_mail, complaint_id=mail_complaint),
        ]
        await publish_twice(stack, [envelope_for(e, source="/tests") for e in complaint_events])

        mailbox.hold_next.set()
        http_receiver.hold = True
        await notify.start()

        async def all_three_in_flight() -> None:
            assert mailbox.held.is_set()
            assert sorted(http_receiver.held) == ["sms", "webhook"]

        await eventually(all_three_in_flight)
        in_flight = await rows(url, Notification)
        assert sorted(row.status for row in in_flight) == ["sending"] * 3

        notify.kill()
        http_receiver.hold = False
        http_receiver.release.set()
        mailbox.release.set()
        await notify.start()

        async def all_sent() -> list[object]:
            found = await rows(url, Notification)
            assert sorted(row.status for row in found) == ["sent"] * 3
            return found

        sent = await eventually(all_sent)
        # The relay publishes what the last run committed (the first run committed no send).
        records = await read_all(stack.bootstrap, stack.prefix + NOTIFY_TOPIC, expect=4, timeout_ms=20_000)
    finally:
        notify.stop()

    # Each message was delivered twice (before and after the kill), with the same delivery id...
    assert [row.attempts for row in sent] == [2, 2, 2]  # type: ignore[attr-defined]
    assert len(mailbox.accepted) == 2
    assert len({str(d.message["Message-ID"]) for d in mailbox.accepted}) == 1
    assert len(http_receiver.sms_requests) == 2 and len(http_receiver.webhook_deliveries) == 2
    # ...and each receiver shows it once.
    [mail] = mailbox.messages()
    assert str(mail["Subject"]).startswith("我们已收到您的投诉")
    assert [sms.to for sms in http_receiver.sms.values()] == ["+8613900000000"]
    assert len(http_receiver.webhooks) == 1
    # The twice-delivered events made one message each, one task, and one notification.sent each.
    assert len(await rows(url, Task)) == 1
    bodies = [json.loads(record.value) for record in records if record.value]
    sent_events = Counter(
        b["data"]["notification_id"] for b in bodies if b["type"] == "csm.notification.sent.v1"
    )
    assert sorted(sent_events.values()) == [1, 1, 1]
    assert sorted(sent_events) == sorted(str(row.id) for row in sent)  # type: ignore[attr-defined]
