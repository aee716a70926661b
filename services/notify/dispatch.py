"""The dispatcher: claims due messages, sends them on their channels, records what happened.

Three steps, each its own transaction around the network I/O:

1. *claim*: due messages are locked (SKIP LOCKED on PostgreSQL), passed through the one gate
   (consent, preferences, quiet hours, the marketing cap: ``policy.decide``) and marked
   ``sending`` with a lease and a claim token, or put back to wait, or suppressed;
2. *send*, outside any transaction, with the message's delivery id;
3. *record*: sent (and ``notification.sent``), or a retry with back-off, or failed for good
   (and ``notification.failed``), only if the claim is still ours.

A worker that dies between 2 and 3 leaves a ``sending`` row whose lease runs out; the next
claim sends it again with the same delivery id, which is how the receiver recognises it.

A message that a consumer's transaction makes due at once (a complaint's acknowledgement) is
claimed in that transaction, by the same gate and with the same lease, and handed to the
dispatcher of the process once it has committed (``send_after_commit``): it leaves without a
transaction of its own for the claim. What the dispatcher has no room for, or every such message
in a process that runs no dispatcher, waits for a claim as above, rung by the commit.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import Counter, Gauge
from sqlalchemy.ext.asyncio import AsyncSession

from services.notify import policy_store
from services.notify.channels import (
    SendFailed,
    configured_channels,
)
from services.notify.models import Notification, WebhookEndpoint
from services.notify.policy import Decision, Outgoing, Policy, decide, quiet_hours_for, retry_delay, zone
from services.notify.projection import recipients
from services.notify.senders import Job, Senders
from services.notify.settings import NotifySettings
from shared.db import Database
from shared.events.customer import ContactChannel, Purpose
from shared.events.notify import NotificationFailed, NotificationSent
from shared.inbox import is_transient
from shared.outbox import stage
from shared.service import Runtime
from shared.tracing import parent_of
from shared.unit_of_work import Slot, unit_of

log = logging.getLogger("csm.notify.dispatch")

SOURCE = "/csm/notify"
RECORD_LINGER_SECONDS = 0.02


# The dispatcher running in this process, if any (a consumer-only process runs none).
_RUNNING: Slot[Dispatcher] = Slot("notify.dispatcher")
# The messages a unit of work made due at once, to claim just before it commits.
_MADE_DUE: Slot[list[uuid.UUID]] = Slot("notify.made_due")


class _Tally:
    """What one transaction claimed and decided, by the metrics' labels."""

    def __init__(self) -> None:
        self.claimed: collections.Counter[str] = collections.Counter()
        self.outcomes: collections.Counter[tuple[str, str]] = collections.Counter()

    def add_to(self, dispatcher: Dispatcher) -> None:
        for by, count in self.claimed.items():
            dispatcher.claimed.labels(by).inc(count)
        for (channel, outcome), count in self.outcomes.items():
            dispatcher.outcomes.labels(channel, outcome).inc(count)


# The counts of a unit of work, added to the metrics once it has committed.
_TALLY: Slot[_Tally] = Slot("notify.tally")


def running(db: Database) -> Dispatcher | None:
    """The dispatcher running in this process on ``db``, if any."""
    return db.extensions.get(_RUNNING)


def ring(db: Database) -> None:
    """Wake the dispatchers of ``db`` in this process: a message may be due now."""
    db.doorbells.due_work.ring()


def ring_after_commit(*, session: AsyncSession) -> None:
    """Wake the dispatchers once this transaction, which made a message due, has committed, so that
    an acknowledgement goes out at once instead of at the next poll."""
    unit = unit_of(session)
    unit.ring_after_commit(unit.doorbells.due_work)


def send_after_commit(ids: Sequence[uuid.UUID], *, session: AsyncSession) -> None:
    """Send the messages ``ids``, which this transaction made due now, as soon as it has committed.

    Just before the commit, the dispatcher of this process claims them in the transaction (as many
    as it has room for); once it has committed, it sends them. The rest are left to its next claim,
    which the commit rings for.
    """
    if not ids:
        return
    unit = unit_of(session)
    made_due = unit.cache.setdefault(_MADE_DUE, list)
    made_due.extend(ids)
    unit.run_before_commit(_claim_made_due)


async def _claim_made_due(*, session: AsyncSession) -> None:
    """Before the commit: claim what the dispatcher has room for (a failure fails the transaction,
    as any of its statements would, and the consumer retries it); ring for the rest."""
    unit = unit_of(session)
    ids = unit.cache.pop(_MADE_DUE) or []
    dispatcher = unit.extensions.get(_RUNNING)
    room = 0 if dispatcher is None else dispatcher.room()
    if len(ids) > room:
        unit.ring_after_commit(unit.doorbells.due_work)
    if dispatcher is None or room == 0:
        return
    jobs = await dispatcher.claim_made_due(ids[:room], session=session)
    if jobs:
        unit.run_after_commit(lambda: dispatcher.take(jobs))


class Dispatcher:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.settings = cast(NotifySettings, runtime.settings)
        self.db = runtime.db
        self.clock = runtime.clock
        self.configured = configured_channels(self.settings)
        self.bell = asyncio.Event()
        self.outcomes = Counter(
            "csm_notify_messages_total",
            "Messages by channel and outcome",
            ["channel", "outcome"],
            registry=runtime.metrics.registry,
        )
        self.claimed = Counter(
            "csm_notify_claimed_total",
            "Messages claimed for sending: in the transaction that made them due (made_due), or by "
            "the dispatcher's own claim (dispatcher)",
            ["by"],
            registry=runtime.metrics.registry,
        )
        Gauge(
            "csm_notify_sends_in_flight",
            "Sends under way now (at most dispatch_concurrency)",
            registry=runtime.metrics.registry,
        ).set_function(lambda: len(self._in_flight))
        self.senders: Senders | None = None
        # Set while ``run`` runs: the sends in flight, and where their results go.
        self._in_flight: set[asyncio.Task[None]] = set()
        # Claimed sends waiting for a slot: a consumer's transaction takes the room it sees before it
        # commits, and a claim of the dispatcher's own in between may have taken the same room.
        self._line: collections.deque[Job] = collections.deque()
        self._results: asyncio.Queue[tuple[Job, str | SendFailed]] | None = None
        self._room = asyncio.Event()

    async def run(self) -> None:
        """Claim while there is room, send each message as its own task, record results as they come.

        A slow receiver holds up only its own messages: claiming goes on while up to
        ``dispatch_concurrency`` sends are in flight, and a recorder commits results in batches.
        """
        senders = self.senders = Senders(self.settings, self.clock)
        results = self._results = asyncio.Queue()
        in_flight = self._in_flight
        recorder = asyncio.create_task(self._recorder(results))
        self.db.doorbells.due_work.add(self.bell)
        self.db.extensions.put(_RUNNING, self)
        full = False
        try:
            while True:
                if recorder.done():
                    recorder.result()  # a recorder that failed fails the worker; the supervisor restarts it
                free = self.room()
                if free < self._low_water() and in_flight:
                    self._room.clear()
                    await self._room.wait()
                    continue
                # Rung by a commit that made a message due, or the last claim was full: there is
                # something to claim, so the look before the claim would only cost a round trip.
                look = not self.bell.is_set() and not full
                self.bell.clear()
                due, jobs = await self._claim(
                    self.clock.now(), limit=min(free, self.settings.dispatch_batch_size), look=look
                )
                full = due >= min(free, self.settings.dispatch_batch_size)
                self.take(jobs)
                if not full:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.bell.wait(), self.settings.scan_poll_seconds)
        finally:
            if self.db.extensions.get(_RUNNING) is self:
                self.db.extensions.pop(_RUNNING)
            self.db.doorbells.due_work.discard(self.bell)
            # Sends still in line are dropped with the rest: their leases run out, and the next
            # claim sends them, with the same delivery id.
            self._line.clear()
            for task in [*in_flight, recorder]:
                task.cancel()
            await asyncio.gather(*in_flight, recorder, return_exceptions=True)
            in_flight.clear()
            await senders.close()
            self.senders = self._results = None

    def _low_water(self) -> int:
        # Claim again once a quarter of the slots are free, so that claims stay batches under load.
        return max(1, self.settings.dispatch_concurrency // 4)

    def room(self) -> int:
        """How many more sends may be claimed now: the cap, less the sends in flight and in line."""
        if self.senders is None:
            return 0
        return max(0, self.settings.dispatch_concurrency - len(self._in_flight) - len(self._line))

    def take(self, jobs: Sequence[Job]) -> None:
        """Send claimed messages, each as its own task once a slot is free; its result goes to the
        recorder. At most ``dispatch_concurrency`` sends are in flight at once.

        Jobs taken after the dispatcher stopped are dropped: their claim's lease runs out and the
        next claim sends them, with the same delivery id.
        """
        if self.senders is None or self._results is None:
            return
        self._line.extend(jobs)
        self._start_from_line()

    def _start_from_line(self) -> None:
        senders, results = self.senders, self._results
        if senders is None or results is None:
            return
        while self._line and len(self._in_flight) < self.settings.dispatch_concurrency:
            task = asyncio.create_task(self._send_then_report(senders, results, self._line.popleft()))
            self._in_flight.add(task)
            task.add_done_callback(self._finished)

    async def _send_then_report(
        self, senders: Senders, results: asyncio.Queue[tuple[Job, str | SendFailed]], job: Job
    ) -> None:
        results.put_nowait((job, await self._send(senders, job)))

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._start_from_line()
        if self.room() >= self._low_water():
            self._room.set()

    async def claim_made_due(self, ids: Sequence[uuid.UUID], *, session: AsyncSession) -> list[Job]:
        """Claim, in the caller's transaction, those of ``ids`` that are waiting and due now."""
        table = Notification.__table__
        now = self.clock.now()
        rows = (
            await session.execute(
                sa.select(table)
                .where(table.c.id.in_(ids), table.c.status == "pending", table.c.due_at <= now)
                .order_by(table.c.due_at)
                .with_for_update(skip_locked=True)
            )
        ).all()
        if not rows:
            return []
        return await self._decide(rows, now, session=session, by="made_due")

    async def _send(self, senders: Senders, job: Job) -> str | SendFailed:
        """Send one message, as a span of the trace it was made in when tracing is on."""
        tracing = self.runtime.tracing
        if not tracing.enabled:
            return await senders.send(job)
        with tracing.span(
            f"send {job.channel.value}",
            kind=SpanKind.CLIENT,
            parent=parent_of(job.traceparent),
            attributes={
                "csm.notification.id": str(job.id),
                "csm.playbook": job.playbook,
                "csm.step": job.step,
            },
        ) as span:
            result = await senders.send(job)
            if span is not None and isinstance(result, SendFailed):
                span.set_status(Status(StatusCode.ERROR, "permanent" if result.permanent else "will retry"))
            return result

    async def _recorder(self, results: asyncio.Queue[tuple[Job, str | SendFailed]]) -> None:
        while True:
            batch = [await results.get()]
            # Linger a moment so that results arriving together commit together: the sends have
            # happened already, so this delays only the bookkeeping, not any message.
            await asyncio.sleep(RECORD_LINGER_SECONDS)
            while not results.empty() and len(batch) < 1000:
                batch.append(results.get_nowait())
            delay = 0.2
            while True:
                try:
                    await self._record(batch)
                    break
                except Exception as error:
                    if not is_transient(error):
                        raise
                    # The database is away: the sends happened, so keep trying to write that down.
                    log.warning("recording %d sends failed (%s); retrying", len(batch), type(error).__name__)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 10.0)

    @staticmethod
    def _due(now: datetime) -> list[sa.ColumnElement[bool]]:
        """Due messages, and sends whose claim lapsed (their worker died): two conditions, each
        an ordered range of the (status, due_at) index, rather than one OR that would sort the table."""
        return [
            sa.and_(Notification.status == "sending", Notification.lease_until <= now),
            sa.and_(Notification.status == "pending", Notification.due_at <= now),
        ]

    async def _claim(self, now: datetime, *, limit: int, look: bool = True) -> tuple[int, list[Job]]:
        # A look without a write lock first: most polls find nothing, and on SQLite a claim
        # transaction would hold up every other writer for nothing.
        if look:
            async with self.db.read() as session:
                found = [
                    await session.scalar(sa.select(Notification.id).where(due).limit(1))
                    for due in self._due(now)
                ]
                if found == [None, None]:
                    return 0, []
        table = Notification.__table__
        async with self.db.unit_of_work() as session:
            # Rows, not ORM objects: a claim changes a few columns of up to a batch of messages,
            # written back by ``_decide`` with one executemany per outcome.
            rows: list[sa.Row[Any]] = []
            for due in self._due(now):
                if len(rows) < limit:
                    rows += (
                        await session.execute(
                            sa.select(table)
                            .where(due)
                            .order_by(table.c.due_at)
                            .limit(limit - len(rows))
                            .with_for_update(skip_locked=True)
                        )
                    ).all()
            if not rows:
                return 0, []
            return len(rows), await self._decide(rows, now, session=session, by="dispatcher")

    async def _decide(
        self, rows: Sequence[sa.Row[Any]], now: datetime, *, session: AsyncSession, by: str
    ) -> list[Job]:
        """Pass rows claimed ``by`` one way or the other through the gate; write each outcome, and
        return the sends to make."""
        settings = self.settings
        tally = self._tally_of(session)
        tally.claimed[by] += len(rows)
        table = Notification.__table__
        policy = (await policy_store.policy(session=session)).policy
        reach_of = await recipients({row.customer_id for row in rows if row.webhook is None}, session=session)
        # Only alerts to staff go to webhooks: a batch of customers' messages needs no look at them.
        named = {row.webhook for row in rows if row.webhook is not None}
        endpoints = (
            {
                e.name: e
                for e in (
                    await session.scalars(
                        sa.select(WebhookEndpoint).where(
                            WebhookEndpoint.enabled, WebhookEndpoint.name.in_(named)
                        )
                    )
                ).all()
            }
            if named
            else {}
        )
        marketing_sent = await self._marketing_counts(rows, policy, now, session=session)
        lease_until = now + timedelta(seconds=settings.send_lease_seconds)
        suppressed: list[dict[str, Any]] = []
        waiting: list[dict[str, Any]] = []
        stored: list[dict[str, Any]] = []
        sending: list[dict[str, Any]] = []
        jobs: list[Job] = []
        for row in rows:
            recipient = reach_of.get(row.customer_id)
            contact = recipient.contact if recipient else None
            decision = decide(
                Outgoing(
                    purpose=Purpose(row.purpose),
                    candidates=tuple(ContactChannel(c) for c in row.candidates),
                    urgent=row.urgent,
                    created_at=row.created_at,
                    to_staff=row.webhook is not None,
                ),
                reach=recipient.reach if recipient else None,
                profile_known=bool(contact and (contact.known or contact.status == "erased")),
                policy=policy,
                now=now,
                time_zone=zone(contact.time_zone if contact else None, policy.default_time_zone),
                quiet=quiet_hours_for(policy, recipient.quiet_hours if recipient else None),
                marketing_sent=marketing_sent.get(row.customer_id, 0),
                configured=self.configured,
            )
            endpoint = endpoints.get(row.webhook) if row.webhook else None
            if row.webhook is not None and endpoint is None:
                decision = Decision(suppressed=f"no enabled webhook named {row.webhook}")
            if decision.suppressed:
                suppressed.append({"b_id": row.id, "b_reason": decision.suppressed})
                tally.outcomes[row.channel, "suppressed"] += 1
                continue
            if decision.wait_until is not None:
                waiting.append({"b_id": row.id, "b_due_at": decision.wait_until})
                continue
            assert decision.channel is not None
            channel = decision.channel.value
            if row.purpose == Purpose.marketing.value:
                marketing_sent[row.customer_id] = marketing_sent.get(row.customer_id, 0) + 1
            if decision.channel is ContactChannel.in_app:
                # Delivered by being stored: the customer's app fetches it.
                stored.append({"b_id": row.id, "b_channel": channel, "b_attempts": row.attempts + 1})
                tally.outcomes[channel, "sent"] += 1
                self._stage_sent(
                    session=session,
                    now=now,
                    customer_id=row.customer_id,
                    notification_id=row.id,
                    channel=channel,
                    purpose=row.purpose,
                    playbook=row.playbook,
                    step=row.step,
                    cause_event_id=row.cause_event_id,
                )
                continue
            claim = uuid.uuid4()
            sending.append(
                {
                    "b_id": row.id,
                    "b_channel": channel,
                    "b_destination": decision.address,
                    "b_attempts": row.attempts + 1,
                    "b_claim": claim,
                }
            )
            jobs.append(
                Job(
                    id=row.id,
                    claim=claim,
                    customer_id=row.customer_id,
                    channel=decision.channel,
                    address=decision.address,
                    name=contact.name if contact else None,
                    title=row.title,
                    body=row.body,
                    sms_text=row.sms_text,
                    language=row.language,
                    purpose=Purpose(row.purpose),
                    idempotency_key=row.idempotency_key,
                    playbook=row.playbook,
                    step=row.step,
                    webhook_url=endpoint.url if endpoint else None,
                    webhook_secret=endpoint.secret if endpoint else None,
                    created_at=row.created_at,
                    thread=row.thread,
                    traceparent=row.traceparent,
                )
            )
        by_id = sa.update(table).where(table.c.id == sa.bindparam("b_id"))
        unclaimed = {"lease_until": None, "claim": None}
        for values, params in (
            ({"status": "suppressed", "last_error": sa.bindparam("b_reason"), **unclaimed}, suppressed),
            ({"status": "pending", "due_at": sa.bindparam("b_due_at"), **unclaimed}, waiting),
            (
                {
                    "status": "sent",
                    "channel": sa.bindparam("b_channel"),
                    "destination": None,
                    "attempts": sa.bindparam("b_attempts"),
                    "sent_at": now,
                    "provider_reference": None,
                    "last_error": None,
                    **unclaimed,
                },
                stored,
            ),
            (
                {
                    "status": "sending",
                    "channel": sa.bindparam("b_channel"),
                    "destination": sa.bindparam("b_destination"),
                    "attempts": sa.bindparam("b_attempts"),
                    "claim": sa.bindparam("b_claim"),
                    "lease_until": lease_until,
                },
                sending,
            ),
        ):
            if params:
                await session.execute(by_id.values(values), params)
        return jobs

    async def _marketing_counts(
        self, rows: Sequence[sa.Row[Any]], policy: Policy, now: datetime, *, session: AsyncSession
    ) -> dict[uuid.UUID, int]:
        cap = policy.marketing_cap
        customers = {row.customer_id for row in rows if row.purpose == Purpose.marketing.value}
        if cap is None or not customers:
            return {}
        counted = await session.execute(
            sa.select(Notification.customer_id, sa.func.count())
            .where(
                Notification.customer_id.in_(customers),
                Notification.purpose == Purpose.marketing.value,
                sa.or_(
                    sa.and_(Notification.status == "sent", Notification.sent_at > now - cap.per),
                    Notification.status == "sending",
                ),
            )
            .group_by(Notification.customer_id)
        )
        return {customer_id: int(count) for customer_id, count in counted.all()}

    async def _record(self, results: list[tuple[Job, str | SendFailed]]) -> None:
        """Write down a batch of sends: one read of the rows' state, one executemany for the sent.

        Plain statements on the columns the record needs rather than ORM objects: an announcement
        records a hundred thousand of these, and loading each row whole (its body too) to change
        six columns cost more than the sends.
        """
        now = self.clock.now()
        table = Notification.__table__
        async with self.db.unit_of_work() as session:
            rows = {
                row.id: row
                for row in (
                    await session.execute(
                        sa.select(
                            table.c.id,
                            table.c.status,
                            table.c.claim,
                            table.c.customer_id,
                            table.c.channel,
                            table.c.purpose,
                            table.c.playbook,
                            table.c.step,
                            table.c.cause_event_id,
                            table.c.attempts,
                        )
                        .where(table.c.id.in_([job.id for job, _ in results]))
                        .with_for_update()
                    )
                ).all()
            }
            sent: list[dict[str, object]] = []
            tally = self._tally_of(session)
            for job, result in results:
                row = rows.get(job.id)
                # Gone (the customer was erased) or taken over after our lease ran out: not ours to record.
                if row is None or row.status != "sending" or row.claim != job.claim:
                    continue
                if isinstance(result, str):
                    sent.append({"b_id": row.id, "b_claim": row.claim, "b_reference": result})
                    tally.outcomes[row.channel, "sent"] += 1
                    self._stage_sent(
                        session=session,
                        now=now,
                        customer_id=row.customer_id,
                        notification_id=row.id,
                        channel=row.channel,
                        purpose=row.purpose,
                        playbook=row.playbook,
                        step=row.step,
                        cause_event_id=row.cause_event_id,
                    )
                    continue
                delay = (
                    None if result.permanent else retry_delay(row.attempts, self.settings.send_retry_backoff)
                )
                ours = sa.update(table).where(table.c.id == row.id, table.c.claim == row.claim)
                if delay is None:
                    await session.execute(
                        ours.values(
                            status="failed",
                            failed_at=now,
                            last_error=result.reason,
                            lease_until=None,
                            claim=None,
                        )
                    )
                    tally.outcomes[row.channel, "failed"] += 1
                    stage(
                        NotificationFailed(
                            customer_id=row.customer_id,
                            notification_id=row.id,
                            channel=ContactChannel(row.channel),
                            purpose=Purpose(row.purpose),
                            playbook=row.playbook,
                            step=row.step,
                            reason=result.reason,
                            attempts=max(1, row.attempts),
                            failed_at=now,
                        ),
                        session=session,
                        source=SOURCE,
                        cause=row.cause_event_id,
                        time=now,
                    )
                else:
                    await session.execute(
                        ours.values(
                            status="pending",
                            due_at=now + delay,
                            last_error=result.reason,
                            lease_until=None,
                            claim=None,
                        )
                    )
                    tally.outcomes[row.channel, "retry"] += 1
            if sent:
                await session.execute(
                    sa.update(table)
                    .where(table.c.id == sa.bindparam("b_id"), table.c.claim == sa.bindparam("b_claim"))
                    .values(
                        status="sent",
                        sent_at=now,
                        provider_reference=sa.bindparam("b_reference"),
                        lease_until=None,
                        claim=None,
                        last_error=None,
                    ),
                    sent,
                )

    def _tally_of(self, session: AsyncSession) -> _Tally:
        """This transaction's counts, added to the metrics once it has committed: a transaction that
        rolls back (a consumer's is then retried) counts nothing."""
        unit = unit_of(session)
        tally = unit.cache.get(_TALLY)
        if tally is None:
            tally = _Tally()
            unit.cache.put(_TALLY, tally)
            unit.run_after_commit(lambda: tally.add_to(self))
        return tally

    def _stage_sent(
        self,
        *,
        session: AsyncSession,
        now: datetime,
        customer_id: uuid.UUID,
        notification_id: uuid.UUID,
        channel: str,
        purpose: str,
        playbook: str,
        step: str,
        cause_event_id: uuid.UUID | None,
    ) -> None:
        stage(
            NotificationSent(
                customer_id=customer_id,
                notification_id=notification_id,
                channel=ContactChannel(channel),
                purpose=Purpose(purpose),
                playbook=playbook,
                step=step,
                cause_event_id=cause_event_id,
                sent_at=now,
            ),
            session=session,
            source=SOURCE,
            cause=cause_event_id,
            time=now,
        )
