"""A running notify service with real receivers for every channel, and ways to feed it events."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa

from services.notify.models import Contact, Notification, Task
from services.notify.workers import Scanner
from shared.clock import ManualClock
from shared.events import Envelope, Event, envelope_for
from shared.events.notify import TOPIC as NOTIFY_TOPIC
from shared.messaging import inbox_message
from shared.roles import Role
from tests.harness import RunningService, Stack, auth, eventually
from tests.notify.receivers import HttpReceiver, Mailbox
from tests.shared.bus_helpers import produce_events, read_all
from tests.shared.event_examples import example

# A Monday, 10:00 in Shanghai: outside quiet hours for a customer there.
START = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)

CHANNEL_SETTINGS = {
    "smtp_connections": 2,
    "scan_poll_seconds": 0.05,
    "send_lease_seconds": 60.0,
    # The test receivers listen on loopback, which webhooks may not reach unless allow-listed.
    "webhook_allowed_networks": ["127.0.0.0/8"],
}


def event(event_type: str, customer_id: uuid.UUID, **fields: Any) -> Event:
    """The example event of a type, for this customer, with some fields changed (and validated)."""
    base = example(event_type, customer_id).model_dump()
    return type(example(event_type, customer_id)).model_validate({**base, **fields})


@dataclass
class Notify:
    stack: Stack
    service: RunningService
    clock: ManualClock
    mailbox: Mailbox
    http: HttpReceiver

    @property
    def client(self) -> httpx.AsyncClient:
        return self.service.client

    async def publish(self, *events: Event | Envelope[Event]) -> list[Envelope[Event]]:
        """Put events on their topics, in order, timestamped by the test clock."""
        envelopes = [
            e if isinstance(e, Envelope) else envelope_for(e, source="/tests", time=self.clock.now())
            for e in events
        ]
        by_topic: dict[str, list[Envelope[Event]]] = defaultdict(list)
        for envelope in envelopes:
            by_topic[envelope.data.topic].append(envelope)
        for topic, batch in by_topic.items():
            await produce_events(self.stack.bootstrap, self.stack.prefix + topic, batch)
        return envelopes

    async def register(
        self,
        *,
        name: str = "李娜",
        email: str | None = "li.na@example.com",
        phone: str | None = "+8613812345678",
        locale: str = "zh-CN",
        time_zone: str = "Asia/Shanghai",
        account_manager: str | None = None,
        marketing: tuple[str, ...] = (),
        interests: tuple[str, ...] = (),
    ) -> uuid.UUID:
        """A customer as the customer service would announce them; waits until notify knows them."""
        customer_id = uuid.uuid4()
        profile = {
            "kind": "individual",
            "name": name,
            "email": email,
            "phone": phone,
            "locale": locale,
            "time_zone": time_zone,
            "account_manager": account_manager,
        }
        events: list[Event] = [
            event("csm.customer.registered.v1", customer_id, profile=profile, registered_at=self.clock.now())
        ]
        events += [
            event(
                "csm.customer.consent_changed.v1",
                customer_id,
                channel=channel,
                purpose="marketing",
                granted=True,
                changed_at=self.clock.now(),
            )
            for channel in marketing
        ]
        if interests:
            events.append(
                event(
                    "csm.customer.interests_changed.v1",
                    customer_id,
                    interests=list(interests),
                    changed_at=self.clock.now(),
                )
            )
        await self.publish(*events)
        await self.wait_known(customer_id, consents=len(marketing), interests=bool(interests))
        return customer_id

    async def wait_known(self, customer_id: uuid.UUID, *, consents: int = 0, interests: bool = False) -> None:
        async def known() -> None:
            async with self.service.runtime.db.read() as session:
                contact = await session.get(Contact, customer_id)
                assert contact is not None and contact.known
                if interests:
                    assert contact.interests_at is not None
            if consents:
                found = (
                    await self.client.get(f"/customers/{customer_id}/preferences", headers=auth())
                ).json()
                assert len(found["consents"]) >= consents

        await eventually(known, interval=0.05)

    async def consumed(self, *envelopes: Envelope[Event]) -> None:
        """Wait until notify has applied these events (their ids are in its inbox)."""
        ids = {envelope.id for envelope in envelopes}

        async def applied() -> None:
            async with self.service.runtime.db.read() as session:
                found = set(
                    (
                        await session.scalars(
                            sa.select(inbox_message.c.event_id).where(inbox_message.c.event_id.in_(ids))
                        )
                    ).all()
                )
            assert found == ids

        await eventually(applied, interval=0.05)

    async def scan(self) -> None:
        """One pass of the scanner now (it also runs in the background; this makes a pass certain)."""
        await Scanner(self.service.runtime).scan_once()

    async def notifications(self, customer_id: uuid.UUID) -> list[Notification]:
        async with self.service.runtime.db.read() as session:
            found = list(
                (
                    await session.scalars(
                        sa.select(Notification)
                        .where(Notification.customer_id == customer_id)
                        .order_by(Notification.created_at)
                    )
                ).all()
            )
            session.expunge_all()  # keep them readable after the read session rolls back
            return found

    async def tasks(self, customer_id: uuid.UUID) -> list[Task]:
        async with self.service.runtime.db.read() as session:
            found = list(
                (
                    await session.scalars(
                        sa.select(Task).where(Task.customer_id == customer_id).order_by(Task.created_at)
                    )
                ).all()
            )
            session.expunge_all()
            return found

    async def settled(self, customer_id: uuid.UUID, count: int) -> list[Notification]:
        """Wait until the customer has ``count`` messages and none is still pending or being sent."""

        async def done() -> list[Notification]:
            found = await self.notifications(customer_id)
            assert len(found) == count, [(n.playbook, n.step, n.status) for n in found]
            assert all(n.status in ("sent", "failed", "suppressed") for n in found), [
                (n.step, n.status, n.last_error) for n in found
            ]
            return found

        return await eventually(done, interval=0.05)

    async def advance(self, delta: timedelta) -> None:
        self.clock.advance(delta)

    async def published(self, event_type: str, *, expect: int) -> list[dict[str, Any]]:
        """The notify service's own events of one type (from its topic on the broker)."""
        import json

        records = await read_all(
            self.stack.bootstrap, self.stack.prefix + NOTIFY_TOPIC, expect=expect, timeout_ms=10_000
        )
        bodies = [json.loads(record.value) for record in records if record.value]
        return [body for body in bodies if body["type"] == event_type]

    async def register_webhook(self, name: str = "complaint-alerts") -> str:
        response = await self.client.put(
            f"/webhooks/{name}", json={"url": f"{self.http.url}/hooks/{name}"}, headers=auth(Role.admin)
        )
        assert response.status_code == 200, response.text
        secret = response.json()["secret"]
        self.http.secrets[name] = secret
        return str(secret)


async def start_notify(
    stack: Stack, mailbox: Mailbox, http: HttpReceiver, *, clock: ManualClock | None = None, **overrides: Any
) -> Notify:
    clock = clock or ManualClock(START)
    settings = {
        **CHANNEL_SETTINGS,
        "smtp_host": "127.0.0.1",
        "smtp_port": mailbox.port,
        "sms_api_url": f"{http.url}/sms",
        "sms_api_key": http.sms_key,
        **overrides,
    }
    service = await stack.start("notify", clock=clock, **settings)
    await service.runtime.bus.wait_started()
    return Notify(stack=stack, service=service, clock=clock, mailbox=mailbox, http=http)


def subject(message: Any) -> str:
    return str(message["Subject"])


def text(message: Any) -> str:
    return str(message.get_content())


def later(delta: timedelta) -> datetime:
    return START + delta
