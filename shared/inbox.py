"""Idempotent consumers: an event's effect and its inbox row commit together, then the offset.

A batch of records is applied in one transaction for throughput. If that fails, the records
are applied one by one so that a single poison record cannot hold back the others: each gets
retries with back-off and then goes to the dead-letter topic with the reason. Failures of
the database or broker themselves are not the record's fault: they are retried until they
pass and nothing is dead-lettered or committed meanwhile, so an outage loses nothing.

When the broker's log is new (``Bus.generation`` moved, see ``shared.bus``), the consumer is
made again and reads the new log from its start; the inbox absorbs what it had already applied.
A record stamped with another log's epoch was sent before its producer noticed the change; it is
skipped, because that producer republishes it.

A consumer group belongs to one log: its name carries the epoch (``csm.<name>.<epoch>``). A reader
that has not yet noticed a new log can still commit, into it, offsets it took from the old one
(the broker it reconnects to is the new one), and a later member of the same group would start
from them: past records it never read, or past the log's end, where a broker may answer with
nothing rather than an out-of-range error. With the epoch in the name, that commit lands in the
old log's group, and a reader of the new log starts from its start or from what readers of the
new log committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaConnectionError, KafkaError
from opentelemetry import trace
from opentelemetry.trace import Span
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncSession

from shared import dead_letters
from shared.bus import Bus
from shared.db import Database, utcnow
from shared.events import REGISTRY, Envelope, Event, InvalidEvent, dead_letter_topic, decode
from shared.events.base import Headers
from shared.kafka_security import security_options
from shared.messaging import dead_letter, inbox_message, write_inbox
from shared.observability import Metrics
from shared.sealing import SEALED_MARK, Sealer, erasure_of
from shared.tracing import Tracing

log = logging.getLogger("csm.inbox")

_NO_SPANS: Mapping[uuid.UUID, Span] = {}
_NOT_TRACED = contextlib.nullcontext()


def _current(spans: Mapping[uuid.UUID, Span]) -> contextlib.AbstractContextManager[object]:
    """The span of a batch's only event, current while the batch applies (its statements are its
    children); a batch of several has no one current span, and each handler makes its event's current."""
    if len(spans) != 1:
        return contextlib.nullcontext()
    return trace.use_span(next(iter(spans.values())), end_on_exit=False)


class Handler(Protocol):
    """Applies one event in the consumer's transaction."""

    def __call__(self, envelope: Envelope[Any], /, *, session: AsyncSession) -> Awaitable[None]: ...


Handlers = Mapping[type[Event], Handler]


# Called once per batch, in its transaction, with the events about to be applied (duplicates
# left out), before any handler: a consumer can load all the rows the batch needs in one query
# instead of one per event.
class Prepare(Protocol):
    def __call__(
        self, envelopes: Sequence[Envelope[Event]], /, *, session: AsyncSession
    ) -> Awaitable[None]: ...


# Called once per batch, in its transaction, with the events about to be applied (duplicates left
# out): a consumer may apply the whole batch set-based and return True, or return False (having
# changed nothing) to have ``prepare`` and the per-event handlers apply it instead.
class ApplyBatch(Protocol):
    def __call__(
        self, envelopes: Sequence[Envelope[Event]], /, *, session: AsyncSession
    ) -> Awaitable[bool]: ...


@dataclass(frozen=True)
class ConsumerSettings:
    batch_size: int = 500
    retry_backoff: tuple[float, ...] = (0.5, 2.0, 8.0)
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 3_000
    # How long the broker may hold a fetch that finds nothing new; some brokers (the embedded
    # tansu) hold it this long even when a record arrives meanwhile, so it bounds intake latency.
    # Short: the consumer applies whatever has arrived at once (``getmany`` returns as soon as a
    # fetch brought anything, up to ``batch_size``), so batches are small when events trickle in
    # and full under load, without waiting for a batch to fill.
    fetch_max_wait_ms: int = 20


def is_transient(error: BaseException) -> bool:
    """True for failures of the infrastructure, which a retry can cure, rather than of the event."""
    if isinstance(error, (sa_exc.OperationalError, sa_exc.InterfaceError, KafkaConnectionError, OSError)):
        return True
    if isinstance(error, sa_exc.DBAPIError):
        if error.connection_invalidated:
            return True
        sqlstate = str(getattr(error.orig, "sqlstate", "") or "")
        # Class 08: connection exception; 40: transaction rollback (deadlock, serialization).
        return sqlstate.startswith(("08", "40"))
    return False


def describe(error: BaseException) -> str:
    """A one-line account of an error, without SQL parameters (they may be personal data)."""
    if isinstance(error, sa_exc.StatementError) and error.orig is not None:
        error = error.orig
    first_line = (str(error).splitlines() or [""])[0]
    return f"{type(error).__name__}: {first_line[:300]}"


class _NewLog(Exception):
    """The broker's log changed under the consumer."""


class EventConsumer:
    """Applies events to one service's database, as one consumer group per broker log (``group_id``)."""

    def __init__(
        self,
        *,
        name: str,
        db: Database,
        bus: Bus,
        handlers: Handlers,
        metrics: Metrics,
        settings: ConsumerSettings,
        prepare: Prepare | None = None,
        apply_batch: ApplyBatch | None = None,
        sealer: Sealer | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self.name = name
        self.tracing = tracing
        self.sealer = sealer
        self.prepare = prepare
        self.apply_batch = apply_batch
        self.db = db
        self.bus = bus
        self.handlers: dict[str, Handler] = {event.type: handler for event, handler in handlers.items()}
        self.topics = sorted({event.topic for event in handlers})
        self.metrics = metrics
        self.settings = settings
        self.dead_letter_topic = dead_letter_topic(name)
        self.assigned = asyncio.Event()
        # The bus generation whose log is being read, and that log's epoch.
        self.generation = bus.generation
        self.epoch: str | None = bus.epoch
        # The partitions whose lag this process reports.
        self._lag_noted: set[TopicPartition] = set()
        # The offset after the last record taken from each partition (by this process's consumer).
        self._taken: dict[TopicPartition, int] = {}

    async def run(self) -> None:
        await self.bus.wait_started()
        while True:
            await self._consume()
            # The broker's log is new: read it from the start, as the new log's group.
            log.warning("consumer %s: the broker's log is new; reading it from the start", self.name)

    @property
    def group_id(self) -> str:
        """The consumer group of the log being read (see the module's docstring)."""
        assert self.epoch is not None, "the consumer has not started"
        return self.bus.topic(f"csm.{self.name}.{self.epoch}")

    async def _consume(self) -> None:
        """Consume until the bus's generation moves on."""
        self.generation, self.epoch = self.bus.generation, self.bus.epoch
        self._taken.clear()  # a new consumer, perhaps of a new log: offsets from before mean nothing
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bus.bootstrap,
            group_id=self.group_id,
            client_id=f"csm-{self.name}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=self.settings.session_timeout_ms,
            heartbeat_interval_ms=self.settings.heartbeat_interval_ms,
            max_poll_records=self.settings.batch_size,
            fetch_max_wait_ms=self.settings.fetch_max_wait_ms,
            **security_options(self.bus.settings),
        )
        # The offsets of the batch applied last, on their way to the broker while the next batch is
        # fetched and applied: an event that came meanwhile does not wait for that round trip. They
        # go one commit at a time, in order; one lost (a crash, a stop) only means records the
        # inbox skips.
        committing: asyncio.Task[None] | None = None
        try:
            # Started inside the try: a stop during start-up (Ctrl-C while joining the group) still closes it.
            await consumer.start()
            consumer.subscribe([self.bus.topic(topic) for topic in self.topics])
            while self.generation == self.bus.generation:
                batches = await consumer.getmany(timeout_ms=500, max_records=self.settings.batch_size)
                if consumer.assignment():
                    self.assigned.set()
                if not batches:
                    self._note_lag(consumer)
                    continue
                try:
                    await self.process([record for records in batches.values() for record in records])
                except _NewLog:
                    return
                offsets = {partition: records[-1].offset + 1 for partition, records in batches.items()}
                self._taken.update(offsets)
                if committing is not None:
                    await committing
                committing = asyncio.create_task(self._commit(consumer, offsets))
                self._note_lag(consumer)
        finally:
            if committing is not None:
                await asyncio.gather(committing, return_exceptions=True)
            await consumer.stop()

    async def _commit(self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
        try:
            await consumer.commit(offsets)
        except CommitFailedError:
            # The group rebalanced meanwhile; the new owner gets these again and the inbox skips them.
            log.info("consumer %s: offsets not committed after a rebalance", self.name)

    def _note_lag(self, consumer: AIOKafkaConsumer) -> None:
        """Records on each assigned partition that this consumer has not yet taken (``csm_consumer_lag``);
        a partition another member took over is no longer this process's to report.

        Nothing here waits: the consumer's own ``position()`` waits for a position it does not know,
        which after the broker lost its log is never, and the loop would never see the new log.
        """
        assigned = consumer.assignment()
        for gone in self._lag_noted - assigned:
            self.metrics.consumer_lag.remove(self.name, gone.topic, str(gone.partition))
        self._lag_noted &= assigned
        for partition in assigned:
            end, taken = consumer.highwater(partition), self._taken.get(partition)
            if end is None or taken is None:
                continue  # nothing fetched from it, or nothing taken from it, yet
            self.metrics.consumer_lag.labels(self.name, partition.topic, str(partition.partition)).set(
                max(0, end - taken)
            )
            self._lag_noted.add(partition)

    async def process(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        """Apply a batch in one transaction, or one record at a time if the batch fails."""
        work: list[tuple[ConsumerRecord[bytes, bytes], Envelope[Event]]] = []
        await self._load_keys(records)
        for record in records:
            if self.bus.sent_to_another_log(record.headers):
                if await self.bus.refresh_epoch() != self.generation:
                    raise _NewLog
                if self.bus.sent_to_another_log(record.headers):
                    self.metrics.events_ignored.labels(self.name).inc()
                    continue
            try:
                envelope = await self._decode(record.value, headers=record.headers, key=record.key)
            except InvalidEvent as error:
                await self._dead_letter(record, reason=str(error), kind="invalid", attempts=1)
                continue
            if (misplaced := self._misplaced(envelope, record.topic)) is not None:
                await self._dead_letter(record, reason=misplaced, kind="invalid", attempts=1)
                continue
            if self.sealer is not None and (erased := erasure_of(envelope.data)) is not None:
                self.sealer.forget(erased)  # this process never opens their data again
            if envelope.type in self.handlers:
                work.append((record, envelope))
            else:
                self.metrics.events_ignored.labels(self.name).inc()
        if not work:
            return
        try:
            await self._apply([envelope for _, envelope in work])
        except asyncio.CancelledError:
            raise
        except Exception:
            for record, envelope in work:
                await self._apply_one(record, envelope)

    async def _load_keys(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        """One trip to the key store for the customers whose sealed data this batch carries."""
        if self.sealer is None:
            return
        customers = set()
        for record in records:
            if record.key and record.value and SEALED_MARK in record.value:
                with contextlib.suppress(ValueError):
                    customers.add(uuid.UUID(record.key.decode(errors="replace")))
        await self.sealer.load(customers)

    async def _decode(self, raw: bytes | None, *, headers: Headers, key: bytes | None) -> Envelope[Event]:
        if self.sealer is None:
            return decode(raw, REGISTRY, headers=headers, key=key)
        try:
            return decode(raw, REGISTRY, headers=headers, key=key, opener=self.sealer.open)
        except KeyError as missing:  # sealed for a customer whose key this batch did not load
            await self.sealer.load([missing.args[0]])
        try:
            return decode(raw, REGISTRY, headers=headers, key=key, opener=self.sealer.open)
        except KeyError:
            raise InvalidEvent("sealed personal data whose key the key store does not have") from None

    def _misplaced(self, envelope: Envelope[Event], topic: str) -> str | None:
        """Why an event may not be taken from ``topic``, if it may not.

        Each event type has one topic, and on a secured broker only the service that owns it may
        write there (see the README on Kafka security): an event found on another service's topic
        was forged or misrouted (a ``customer.erased`` on the complaints topic, say).
        """
        expected = self.bus.topic(envelope.data.topic)
        if topic == expected:
            return None
        return f"{envelope.type} comes only on {expected}, not on {topic}: not applied"

    async def _apply(self, envelopes: Sequence[Envelope[Event]]) -> list[Envelope[Event]]:
        """Apply what the inbox has not seen, in one transaction; returns what was applied."""
        async with self.db.unit_of_work() as session:
            ids = [envelope.id for envelope in envelopes]
            seen: set[uuid.UUID] = set(
                (
                    await session.scalars(
                        sa.select(inbox_message.c.event_id).where(
                            inbox_message.c.consumer == self.name, inbox_message.c.event_id.in_(ids)
                        )
                    )
                ).all()
            )
            applied: list[Envelope[Event]] = []
            for envelope in envelopes:
                if envelope.id in seen:
                    continue
                seen.add(envelope.id)
                applied.append(envelope)
            if len(applied) < len(envelopes):
                self.metrics.events_duplicate.labels(self.name).inc(len(envelopes) - len(applied))
            with self._consuming(applied) as spans, _current(spans):
                if applied and not (
                    self.apply_batch is not None and await self.apply_batch(applied, session=session)
                ):
                    if self.prepare is not None:
                        await self.prepare(applied, session=session)
                    for envelope in applied:
                        span = spans.get(envelope.id)
                        with _NOT_TRACED if span is None else trace.use_span(span, end_on_exit=False):
                            log.debug("consumer %s applies %s %s", self.name, envelope.type, envelope.id)
                            await self.handlers[envelope.type](envelope, session=session)
            await write_inbox(
                session, consumer=self.name, event_ids=[envelope.id for envelope in applied], at=utcnow()
            )
        for event_type, count in Counter(envelope.type for envelope in applied).items():
            self.metrics.events_consumed.labels(self.name, event_type).inc(count)
        return applied

    def _consuming(
        self, envelopes: Sequence[Envelope[Event]]
    ) -> contextlib.AbstractContextManager[Mapping[uuid.UUID, Span]]:
        if self.tracing is None or not self.tracing.enabled:
            return contextlib.nullcontext(_NO_SPANS)
        return self.tracing.consuming(self.name, envelopes)

    async def _apply_one(self, record: ConsumerRecord[bytes, bytes], envelope: Envelope[Event]) -> None:
        failures = 0
        transient_delay = 0.5
        while True:
            try:
                await self._apply([envelope])
                return
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if is_transient(error):
                    log.warning(
                        "consumer %s: %s while applying %s %s; retrying",
                        self.name,
                        type(error).__name__,
                        envelope.type,
                        envelope.id,
                    )
                    await asyncio.sleep(transient_delay)
                    transient_delay = min(transient_delay * 2, 30.0)
                    continue
                if failures >= len(self.settings.retry_backoff):
                    reason = f"handler failed {failures + 1} times: {describe(error)}"
                    await self._dead_letter(
                        record, reason=reason, kind="handler_error", attempts=failures + 1
                    )
                    return
                self.metrics.event_retries.labels(self.name).inc()
                await asyncio.sleep(self.settings.retry_backoff[failures])
                failures += 1

    async def _dead_letter(
        self, record: ConsumerRecord[bytes, bytes], *, reason: str, kind: str, attempts: int
    ) -> None:
        """Keep the record in the database with the reason, then on the dead-letter topic for others."""
        reason = reason[:1000]
        added = [
            ("csm-dead-letter-reason", reason.encode()),
            ("csm-consumer", self.name.encode()),
            ("csm-original-topic", record.topic.encode()),
            ("csm-original-partition", str(record.partition).encode()),
            ("csm-original-offset", str(record.offset).encode()),
            ("csm-attempts", str(attempts).encode()),
        ]
        # The record's own headers, without those of an earlier dead-lettering.
        replaced = {name for name, _ in added}
        original = [(name, value) for name, value in record.headers if name not in replaced]
        await self._retry_transient(
            lambda: self._keep(record, reason=reason, kind=kind, attempts=attempts, headers=original)
        )
        headers = [*original, *added]
        delay = 0.5
        while True:
            try:
                acknowledged = await self.bus.send(
                    self.dead_letter_topic,
                    key=record.key,
                    value=record.value,
                    epoch=self.bus.epoch or "",
                    headers=headers,
                )
                await acknowledged
                break
            except KafkaError as error:
                log.warning("consumer %s: dead-letter publish failed (%s); retrying", self.name, error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
        self.metrics.events_dead_lettered.labels(self.name, kind).inc()
        log.error(
            "consumer %s dead-lettered %s[%d]@%d to %s: %s",
            self.name,
            record.topic,
            record.partition,
            record.offset,
            self.dead_letter_topic,
            reason,
        )

    async def _keep(
        self,
        record: ConsumerRecord[bytes, bytes],
        *,
        reason: str,
        kind: str,
        attempts: int,
        headers: Sequence[tuple[str, bytes]],
    ) -> None:
        async with self.db.unit_of_work() as session:
            await dead_letters.keep(
                session=session,
                consumer=self.name,
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                key=record.key,
                value=record.value,
                headers=headers,
                kind=kind,
                reason=reason,
                attempts=attempts,
                now=utcnow(),
            )

    async def _retry_transient(self, attempt: Callable[[], Awaitable[None]]) -> None:
        delay = 0.5
        while True:
            try:
                await attempt()
                return
            except Exception as error:
                if not is_transient(error):
                    raise
                log.warning("consumer %s: %s; retrying", self.name, type(error).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def replay(self, dead_letter_id: uuid.UUID) -> Literal["applied", "already-applied"]:
        """Apply a dead letter again through the inbox; it is marked replayed once it succeeds."""
        async with self.db.read() as session:
            row = (
                await session.execute(
                    sa.select(dead_letter).where(
                        dead_letter.c.id == dead_letter_id, dead_letter.c.consumer == self.name
                    )
                )
            ).first()
        if row is None:
            raise dead_letters.DeadLetterNotFound()
        if row.replayed_at is not None:
            raise dead_letters.DeadLetterAlreadyReplayed(row.replayed_at)
        try:
            envelope = await self._decode(
                row.value, headers=dead_letters.headers_from_json(row.headers), key=row.key
            )
            if envelope.type not in self.handlers:
                raise InvalidEvent(f"{envelope.type} is not an event the {self.name} consumer applies")
            if (misplaced := self._misplaced(envelope, row.topic)) is not None:
                raise InvalidEvent(misplaced)
            applied = await self._apply([envelope])
        except Exception as error:
            reason = describe(error)
            async with self.db.unit_of_work() as session:
                await session.execute(
                    dead_letter.update().where(dead_letter.c.id == dead_letter_id).values(replay_error=reason)
                )
            raise dead_letters.DeadLetterStillFails(reason) from None
        async with self.db.unit_of_work() as session:
            await session.execute(
                dead_letter.update()
                .where(dead_letter.c.id == dead_letter_id)
                .values(replayed_at=utcnow(), replay_error=None)
            )
        log.info("consumer %s replayed dead letter %s (%s)", self.name, dead_letter_id, envelope.type)
        return "applied" if applied else "already-applied"
