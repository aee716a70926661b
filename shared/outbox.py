"""The transactional outbox: events commit with the state change that caused them; a relay publishes them.

Code that changes state calls ``stage(event, session=session)``; the events are written to
``outbox_message`` in the same transaction when ``Database.unit_of_work`` commits. The relay
publishes pending rows in order with acks=all and marks them published. A crash between the
two publishes a row again; consumers are idempotent, so that changes nothing.

An acknowledgement is trusted only if the broker's log is still the one the batch was sent to
(see ``shared.bus``): a broker that restarted empty acknowledges records for topics it no longer
has and drops them. When the log is new, the relay first marks every retained event unpublished
again, so they go out in their original order before anything newer.

The check follows every batch, before anything more is sent: a broker that restarted takes at
most one batch into its new log before the relay recreates the topics and replays (records sent
to a log whose topics are not made yet are what a restarted broker handles worst). The marking
(a write, which on SQLite waits for the consumer's transaction) is done in the background while
the relay reads and sends the next batch: an event committed meanwhile does not wait for it.
Events acknowledged but not yet marked are not read again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from shared.bus import Bus, Outgoing
from shared.db import Database, affected_rows, utcnow
from shared.events import CONTENT_TYPE, REGISTRY, Envelope, Event, encode, envelope_for
from shared.events.customer import CustomerErased
from shared.messaging import bus_state, inbox_message, outbox_message, write_outbox
from shared.observability import Metrics
from shared.sealing import Sealer, personal_fields, redacted
from shared.tracing import Tracing, parent_of, trace_context
from shared.unit_of_work import unit_of

log = logging.getLogger("csm.outbox")

_RELAY_LOCK_KEY = 0x63736D6F7574  # "csmout": one relay per database on PostgreSQL
_EPOCH = "broker_epoch"
# How many batches may be acknowledged and not yet marked published (each is left out of the next read).
_UNSETTLED_MOST = 4


def stage(
    event: Event,
    *,
    session: AsyncSession,
    source: str,
    cause: uuid.UUID | None = None,
    time: datetime | None = None,
) -> Envelope[Event]:
    """Stage ``event`` to commit with the session's transaction; returns its envelope.

    It carries the trace it was staged in (its cause's, when a consumer is applying the cause), so
    that its consumers continue that trace (shared.tracing).
    """
    traceparent, tracestate = trace_context(cause)
    envelope = envelope_for(
        event, source=source, cause=cause, time=time, traceparent=traceparent, tracestate=tracestate
    )
    unit = unit_of(session)
    unit.staged.append(envelope)
    unit.run_before_commit(_write_staged)
    return envelope


async def _write_staged(*, session: AsyncSession) -> None:
    unit = unit_of(session)
    staged, unit.staged = unit.staged, []
    if not staged:
        return
    await write_outbox(
        session,
        [
            (envelope.id, envelope.data.topic, envelope.partitionkey, envelope.type, encode(envelope))
            for envelope in staged
        ],
        at=utcnow(),
    )
    unit.ring_after_commit(unit.doorbells.outbox)


async def redact(
    customer_ids: Iterable[uuid.UUID],
    *,
    session: AsyncSession,
    types: Iterable[str] | None = None,
    rewrite: Callable[[str, dict[str, Any]], dict[str, Any]] = redacted,
) -> int:
    """Rewrite the retained events of erased customers without their personal data; returns how many.

    Published events stay in the outbox for a while to refill a broker that lost its log; an
    erased person's must not keep what names them there either. By default the events with
    personal fields lose those (``shared.sealing``); a service may say which ``types`` and how.
    """
    keys = [str(customer_id) for customer_id in customer_ids]
    if types is None:
        types = [event_type for event_type in REGISTRY if personal_fields(event_type)]
    rows = (
        await session.execute(
            sa.select(outbox_message.c.seq, outbox_message.c.event_type, outbox_message.c.body).where(
                outbox_message.c.key.in_(keys), outbox_message.c.event_type.in_(list(types))
            )
        )
    ).all()
    for row in rows:
        envelope = orjson.loads(row.body)
        envelope["data"] = rewrite(row.event_type, envelope["data"])
        await session.execute(
            outbox_message.update().where(outbox_message.c.seq == row.seq).values(body=orjson.dumps(envelope))
        )
    return len(rows)


class PublishIncomplete(Exception):
    """Some events of a batch were not acknowledged; they are sent again."""


@dataclass(frozen=True)
class RelaySettings:
    batch_size: int = 500
    poll_seconds: float = 1.0
    retention: timedelta = timedelta(days=7)
    purge_seconds: float = 3600.0


class OutboxRelay:
    """Publishes committed events in commit order; one active relay per database."""

    def __init__(
        self,
        *,
        db: Database,
        bus: Bus,
        metrics: Metrics,
        settings: RelaySettings,
        sealer: Sealer | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self.db = db
        self.sealer = sealer
        self.tracing = tracing
        self.bus = bus
        self.metrics = metrics
        self.settings = settings
        # The bus generation whose log the outbox has been reconciled with (None: not yet).
        self.generation: int | None = None
        self.epoch: str | None = None
        # True from a replay until the replayed backlog is published.
        self.recovering = False
        # Events the broker acknowledged, by seq, not yet marked published; and the task marking them.
        self._unsettled: set[int] = set()
        self._settling: asyncio.Task[None] | None = None

    async def run(self) -> None:
        async with AsyncExitStack() as stack:
            # Listening before anything else, so that no commit's ring is missed.
            bell = stack.enter_context(self.db.doorbells.outbox.listen())
            if self.db.dialect == "postgresql":
                await stack.enter_async_context(self._leadership())
            stack.push_async_callback(self._stop_settling)
            await self.bus.wait_started()
            loop = asyncio.get_running_loop()
            next_purge = loop.time()
            delay = 0.2
            while True:
                bell.clear()
                try:
                    published = await self.publish_pending()
                except asyncio.CancelledError:
                    raise
                except Exception as error:
                    # Back to the top: a new broker log is recovered from before the next try.
                    log.warning("outbox publish failed (%s: %s); retrying", type(error).__name__, error)
                    # The backlog grows while the broker is away: the gauge that alerts on it must see that.
                    with contextlib.suppress(Exception):
                        self.metrics.outbox_pending.set(await self.pending_count())
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 10.0)
                    continue
                delay = 0.2
                if loop.time() >= next_purge:
                    await self.purge()
                    next_purge = loop.time() + self.settings.purge_seconds
                if published < self.settings.batch_size:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(bell.wait(), self.settings.poll_seconds)

    async def publish_pending(self) -> int:
        """Publish one batch of pending events; returns how many were published.

        What the broker acknowledged is marked published in the background (``settled`` waits for it).
        """
        if self.generation != self.bus.generation:
            await self.sync_epoch()
        if len(self._unsettled) >= _UNSETTLED_MOST * self.settings.batch_size:
            # The marking fell behind (the database refuses writes?): it catches up before more is read.
            await self.settled()
        pending: sa.ColumnElement[bool] = outbox_message.c.published_at.is_(None)
        if self._unsettled:
            pending = sa.and_(pending, outbox_message.c.seq.not_in(sorted(self._unsettled)))
        async with self.db.read() as session:
            rows = (
                await session.execute(
                    sa.select(
                        outbox_message.c.seq,
                        outbox_message.c.topic,
                        outbox_message.c.key,
                        outbox_message.c.event_type,
                        outbox_message.c.body,
                    )
                    .where(pending)
                    .order_by(outbox_message.c.seq)
                    .limit(self.settings.batch_size)
                )
            ).all()
        if not rows:
            if not self._unsettled:
                self.metrics.outbox_pending.set(0)
            self.recovering = False
            return 0
        generation, epoch = self.generation, self.epoch
        assert epoch is not None
        headers = [("content-type", CONTENT_TYPE.encode())]
        bodies = await self._sealed(rows) if self.sealer is not None else [row.body for row in rows]
        spans = self._publish_spans(rows)
        try:
            acknowledged = await self.bus.publish(
                [
                    Outgoing(row.topic, row.key.encode() if row.key else None, body, headers)
                    for row, body in zip(rows, bodies, strict=True)
                ],
                epoch=epoch,
            )
        except BaseException as error:
            for span in spans.values():
                span.set_status(Status(StatusCode.ERROR, type(error).__name__))
                span.end()
            raise
        for index, span in spans.items():
            if not acknowledged[index]:
                span.set_status(Status(StatusCode.ERROR, "not acknowledged"))
            span.end()
        if await self.bus.refresh_epoch() != generation:
            # Acknowledged by a broker whose log is not the one we sent to: nothing is marked, and
            # nothing more is sent before ``sync_epoch`` has made the new log's topics and replayed.
            return 0
        published = [row for row, acked in zip(rows, acknowledged, strict=True) if acked]
        self._unsettled.update(row.seq for row in published)
        if self._settling is None or self._settling.done():
            self._settling = asyncio.create_task(self._settle())
        for topic, count in Counter(row.topic for row in published).items():
            self.metrics.outbox_published.labels(topic).inc(count)
        if len(published) < len(rows):
            # What failed is sent again after what was acknowledged: each partition's order holds.
            raise PublishIncomplete(f"{len(rows) - len(published)} of {len(rows)} events not acknowledged")
        full_batch = len(rows) == self.settings.batch_size
        self.metrics.outbox_pending.set(await self.pending_count() if full_batch else 0)
        if not full_batch:
            self.recovering = False
        return len(rows)

    async def settled(self) -> None:
        """Wait until what the broker acknowledged so far is marked published."""
        if self._settling is not None:
            await asyncio.gather(self._settling, return_exceptions=True)

    async def _settle(self) -> None:
        """Mark published what the broker acknowledged (each batch's log was checked before it was
        added); until the marking commits, it is retried."""
        delay = 0.2
        while self._unsettled:
            seqs = sorted(self._unsettled)
            try:
                async with self.db.unit_of_work() as session:
                    await session.execute(
                        outbox_message.update()
                        .where(outbox_message.c.seq.in_(seqs))
                        .values(published_at=utcnow())
                    )
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("marking published events failed (%s: %s); retrying", type(error).__name__, error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            self._unsettled.difference_update(seqs)
            delay = 0.2

    async def _stop_settling(self) -> None:
        if self._settling is not None:
            self._settling.cancel()
            await asyncio.gather(self._settling, return_exceptions=True)

    def _publish_spans(self, rows: Sequence[Any]) -> dict[int, Span]:
        """A ``publish`` span for each traced event, by its place in ``rows``, in the trace the event
        was staged in; none when tracing is off.

        The span runs from the batch's send to the broker's acknowledgement; the event's consumers are
        its siblings, children of the span that staged it, as the messaging conventions have it.
        """
        if self.tracing is None or not self.tracing.enabled:
            return {}
        tracer = self.tracing.tracer
        spans = {}
        for index, row in enumerate(rows):
            parent = parent_of(orjson.loads(row.body).get("traceparent"))
            if parent is None:
                continue  # staged outside any trace: a trace of its publishing alone would tell nothing
            spans[index] = tracer.start_span(
                f"publish {row.topic}",
                context=parent,
                kind=SpanKind.PRODUCER,
                attributes={
                    "messaging.system": "kafka",
                    "messaging.operation.type": "send",
                    "messaging.destination.name": self.bus.topic(row.topic),
                    "cloudevents.event_type": row.event_type,
                },
            )
        return spans

    async def _sealed(self, rows: Sequence[Any]) -> list[bytes]:
        """The bodies as they go on the broker: personal fields sealed with each customer's key.

        An erasure among them destroys its customer's key once the batch is sealed: what went
        before it is readable until the erasure is applied; nothing of theirs is readable after.
        """
        assert self.sealer is not None
        personal = {row.seq for row in rows if personal_fields(row.event_type)}
        await self.sealer.load({uuid.UUID(row.key) for row in rows if row.seq in personal}, create=True)
        bodies = []
        for row in rows:
            if row.seq in personal:
                envelope = orjson.loads(row.body)
                envelope["data"] = self.sealer.seal(row.event_type, envelope["data"], uuid.UUID(row.key))
                bodies.append(orjson.dumps(envelope))
            else:
                bodies.append(row.body)
        erased = [uuid.UUID(row.key) for row in rows if row.event_type == CustomerErased.type]
        if erased:
            await self.sealer.erase(erased, at=utcnow())
        return bodies

    async def pending_count(self) -> int:
        async with self.db.read() as session:
            count = await session.scalar(
                sa.select(sa.func.count())
                .select_from(outbox_message)
                .where(outbox_message.c.published_at.is_(None))
            )
        return int(count or 0)

    async def sync_epoch(self) -> None:
        """If the broker's log is not the one we published to, mark the retained events unpublished.

        The log is the bus's (``Bus.epoch``); the one published to is kept in the database, so a
        service that starts against a broker that lost its log while it was down replays as well.
        """
        # A marking still under way lands before the retained events are marked unpublished, not after.
        await self.settled()
        generation = self.bus.generation
        epoch = self.bus.epoch
        if epoch is None:
            raise RuntimeError("the bus has not read the broker's epoch")
        async with self.db.unit_of_work() as session:
            known = await session.scalar(sa.select(bus_state.c.value).where(bus_state.c.name == _EPOCH))
            if known is None:
                await session.execute(
                    bus_state.insert().values(name=_EPOCH, value=epoch, updated_at=utcnow())
                )
            elif known != epoch:
                since = utcnow() - self.settings.retention
                result = await session.execute(
                    outbox_message.update()
                    .where(outbox_message.c.published_at.is_not(None), outbox_message.c.created_at >= since)
                    .values(published_at=None)
                )
                self.metrics.outbox_replays.inc()
                self.recovering = True
                log.warning("broker log changed; replaying %d retained events", affected_rows(result))
                await session.execute(
                    bus_state.update()
                    .where(bus_state.c.name == _EPOCH)
                    .values(value=epoch, updated_at=utcnow())
                )
        # Marked by now (``settled`` returns when nothing is left to mark).
        self._unsettled.clear()
        self.generation, self.epoch = generation, epoch
        self.db.doorbells.outbox.ring()

    async def purge(self) -> None:
        """Forget published events past retention, and inbox ids past twice that."""
        now = utcnow()
        async with self.db.unit_of_work() as session:
            await session.execute(
                outbox_message.delete().where(
                    outbox_message.c.published_at.is_not(None),
                    outbox_message.c.created_at < now - self.settings.retention,
                )
            )
            await session.execute(
                inbox_message.delete().where(inbox_message.c.processed_at < now - 2 * self.settings.retention)
            )

    def _leadership(self) -> _AdvisoryLock:
        return _AdvisoryLock(self.db)


class _AdvisoryLock:
    """Holds a PostgreSQL advisory lock on a dedicated connection while the relay runs."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.connection: AsyncConnection | None = None

    async def __aenter__(self) -> None:
        while True:
            connection = await self.db.engine.connect()
            acquired = await connection.scalar(
                sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": _RELAY_LOCK_KEY}
            )
            await connection.commit()
            if acquired:
                self.connection = connection
                return
            await connection.close()
            await asyncio.sleep(5)

    async def __aexit__(self, *exc: object) -> None:
        if self.connection is not None:
            await self.connection.close()
