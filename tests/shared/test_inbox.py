"""The idempotent consumer on a real broker: duplicates, poison events, bad records, outages."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncSession

from shared.broker import EmbeddedBroker
from shared.bus import Bus, partition_for
from shared.db import Database
from shared.events import Envelope, Event, dead_letter_topic, encode
from shared.events.complaints import ComplaintOpened
from shared.events.customer import PurchaseRecorded
from shared.inbox import ConsumerSettings, EventConsumer
from shared.messaging import inbox_message
from shared.observability import Metrics
from tests.harness import Databases, common_settings_for_tests
from tests.shared.bus_helpers import produce, produce_events, purchase, read_all

TOPIC = PurchaseRecorded.topic


@dataclass
class Probe:
    """A consumer whose handler records what it saw and fails where it is told to."""

    consumer: EventConsumer
    db: Database
    bus: Bus
    prefix: str
    calls: list[uuid.UUID] = field(default_factory=list)

    def topic(self, name: str) -> str:
        return self.prefix + name

    async def applied(self) -> list[uuid.UUID]:
        async with self.db.read() as session:
            return list((await session.scalars(sa.select(inbox_message.c.event_id))).all())


@asynccontextmanager
async def running_probe(
    broker: EmbeddedBroker,
    databases: Databases,
    fail: Callable[[Envelope[Any], int], None],
    also: tuple[type[Event], ...] = (),
    *,
    batch_size: int = 100,
    waiting: list[Envelope[Event]] | None = None,
) -> AsyncIterator[Probe]:
    """A running probe; ``waiting`` events are on its topic before it first reads."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    common = common_settings_for_tests(broker.bootstrap, prefix)
    db = Database(await databases.create("notify"))
    bus = Bus(common, client_id="probe")
    probe = Probe(consumer=None, db=db, bus=bus, prefix=prefix)  # type: ignore[arg-type]

    async def handle(event: Envelope[Any], /, *, session: AsyncSession) -> None:
        probe.calls.append(event.id)
        fail(event, probe.calls.count(event.id))

    probe.consumer = EventConsumer(
        name="probe",
        db=db,
        bus=bus,
        handlers={PurchaseRecorded: handle, **dict.fromkeys(also, handle)},
        metrics=Metrics(),
        settings=ConsumerSettings(
            batch_size=batch_size,
            retry_backoff=(0.05, 0.05),
            session_timeout_ms=2000,
            heartbeat_interval_ms=300,
        ),
    )
    await bus.start([TOPIC, *(event.topic for event in also), dead_letter_topic("probe")])
    if waiting:
        await produce_events(broker.bootstrap, probe.topic(TOPIC), waiting)
    task = asyncio.create_task(probe.consumer.run())
    try:
        yield probe
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await bus.stop()
        await db.dispose()


def never(_event: Envelope[Any], _attempt: int) -> None:
    return None


async def wait_for(condition: Callable[[], object], timeout: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():  # type: ignore[misc]
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_an_event_delivered_twice_is_applied_once(broker: EmbeddedBroker, databases: Databases) -> None:
    async with running_probe(broker, databases, never) as probe:
        customer = uuid.uuid4()
        first, second = purchase(customer), purchase(customer)
        # The duplicate arrives in the same batch and again in a later one.
        await produce_events(broker.bootstrap, probe.topic(TOPIC), [first, first, second])

        async def both_applied() -> bool:
            return set(await probe.applied()) == {first.id, second.id}

        await wait_for(both_applied)
        await produce_events(broker.bootstrap, probe.topic(TOPIC), [first])
        marker = purchase(customer)
        await produce_events(broker.bootstrap, probe.topic(TOPIC), [marker])

        async def marker_applied() -> bool:
            return marker.id in await probe.applied()

        await wait_for(marker_applied)
        assert probe.calls.count(first.id) == 1
        assert sorted(map(str, await probe.applied())) == sorted(map(str, [first.id, second.id, marker.id]))
        # The metrics count each delivery once: three applied, the two repeats of ``first`` as duplicates.
        metrics = probe.consumer.metrics
        assert metrics.events_consumed.labels("probe", PurchaseRecorded.type)._value.get() == 3
        assert metrics.events_duplicate.labels("probe")._value.get() == 2


async def test_a_handler_that_keeps_failing_dead_letters_the_event_and_later_ones_go_on(
    broker: EmbeddedBroker, databases: Databases, caplog: pytest.LogCaptureFixture
) -> None:
    customer = uuid.uuid4()  # one key: all three events share a partition
    before, poison, after = purchase(customer), purchase(customer), purchase(customer)

    def fail_on_poison(event: Envelope[Any], _attempt: int) -> None:
        if event.id == poison.id:
            raise ValueError("the ledger rejects this purchase")

    with caplog.at_level(logging.ERROR, logger="csm.inbox"):
        async with running_probe(broker, databases, fail_on_poison) as probe:
            await produce_events(broker.bootstrap, probe.topic(TOPIC), [before, poison, after])
            dead = await read_all(broker.bootstrap, probe.topic(dead_letter_topic("probe")), expect=1)

            async def later_applied() -> bool:
                return after.id in await probe.applied()

            await wait_for(later_applied)
            applied = await probe.applied()

    assert set(applied) == {before.id, after.id}
    assert len(dead) == 1
    assert dead[0].value == encode(poison)
    assert dead[0].key == str(customer).encode()
    headers = dict(dead[0].headers)
    assert b"ValueError: the ledger rejects this purchase" in headers["csm-dead-letter-reason"]
    assert headers["csm-attempts"] == b"3"  # the first try and two retries
    assert headers["csm-original-topic"] == probe.topic(TOPIC).encode()
    # Tried in the failed batch, then alone with two retries; the neighbours were not held back for good.
    assert probe.calls.count(poison.id) == 4
    assert any(
        "dead-lettered" in r.getMessage() and "ledger rejects" in r.getMessage() for r in caplog.records
    )


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"this is not json", b"not a CloudEvents 1.0 envelope"),
        (b'{"specversion": "1.0"}', b"not a CloudEvents 1.0 envelope: id: missing"),
        ("unknown-type", b"unknown event type 'csm.nothing.happened.v1'"),
        ("bad-payload", b"invalid csm.purchase.recorded.v1 payload: amount"),
    ],
)
async def test_a_record_that_is_not_a_valid_event_is_dead_lettered_with_the_reason(
    broker: EmbeddedBroker,
    databases: Databases,
    caplog: pytest.LogCaptureFixture,
    value: bytes | str,
    reason: bytes,
) -> None:
    customer = uuid.uuid4()
    good = purchase(customer)
    if value == "unknown-type":
        value = encode(good).replace(b"csm.purchase.recorded.v1", b"csm.nothing.happened.v1")
    elif value == "bad-payload":
        value = encode(purchase(customer, amount="10.00")).replace(b'"amount":"10.00"', b'"amount":"ten"')
    assert isinstance(value, bytes)
    with caplog.at_level(logging.ERROR, logger="csm.inbox"):
        async with running_probe(broker, databases, never) as probe:
            await produce(broker.bootstrap, probe.topic(TOPIC), [(str(customer), value)])
            await produce_events(broker.bootstrap, probe.topic(TOPIC), [good])
            dead = await read_all(broker.bootstrap, probe.topic(dead_letter_topic("probe")), expect=1)

            async def good_applied() -> bool:
                return good.id in await probe.applied()

            await wait_for(good_applied)

    assert [record.value for record in dead] == [value]
    assert reason in dict(dead[0].headers)["csm-dead-letter-reason"]
    assert any(reason.decode() in r.getMessage() for r in caplog.records)


async def test_a_database_outage_is_retried_until_it_passes_and_nothing_is_dead_lettered(
    broker: EmbeddedBroker, databases: Databases
) -> None:
    def outage_for_three_tries(_event: Envelope[Any], attempt: int) -> None:
        if attempt <= 3:
            raise sa_exc.OperationalError("INSERT", {}, ConnectionError("server closed the connection"))

    async with running_probe(broker, databases, outage_for_three_tries) as probe:
        event = purchase(uuid.uuid4())
        await produce_events(broker.bootstrap, probe.topic(TOPIC), [event])

        async def applied() -> bool:
            return event.id in await probe.applied()

        await wait_for(applied)
        assert probe.calls.count(event.id) == 4
        # Three failures with only two retries allowed would have dead-lettered a handler error.
        metric = probe.consumer.metrics.events_dead_lettered
        assert (
            sum(
                sample.value
                for sample in next(iter(metric.collect())).samples
                if sample.name.endswith("_total")
            )
            == 0
        )


async def test_an_event_on_a_topic_other_than_its_own_is_refused_as_forged(
    broker: EmbeddedBroker, databases: Databases
) -> None:
    """Only the customer service may write the customer topic (on a secured broker); a customer event
    that another service's principal could write, on that service's topic, is not believed."""
    customer = uuid.uuid4()
    forged, genuine = purchase(customer), purchase(customer)
    async with running_probe(broker, databases, never, also=(ComplaintOpened,)) as probe:
        await produce_events(broker.bootstrap, probe.topic(ComplaintOpened.topic), [forged])
        await produce_events(broker.bootstrap, probe.topic(TOPIC), [genuine])
        dead = await read_all(broker.bootstrap, probe.topic(dead_letter_topic("probe")), expect=1)

        async def genuine_applied() -> bool:
            return genuine.id in await probe.applied()

        await wait_for(genuine_applied)
        assert forged.id not in await probe.applied() and forged.id not in probe.calls
    reason = dict(dead[0].headers)["csm-dead-letter-reason"].decode()
    assert reason == (
        f"csm.purchase.recorded.v1 comes only on {probe.topic(TOPIC)}, "
        f"not on {probe.topic(ComplaintOpened.topic)}: not applied"
    )


async def test_consumer_lag_counts_the_records_not_yet_taken_and_falls_to_nothing(
    broker: EmbeddedBroker, databases: Databases
) -> None:
    """Five events wait on one partition; the consumer takes one at a time and the database is
    away for the second: four are behind it. Once the database is back, none."""
    customer = uuid.uuid4()
    waiting = [purchase(customer) for _ in range(5)]
    database_away = True

    def second_fails_while_the_database_is_away(event: Envelope[Any], _attempt: int) -> None:
        if event.id == waiting[1].id and database_away:
            raise sa_exc.OperationalError("INSERT", {}, Exception("the database went away"))

    async with running_probe(
        broker, databases, second_fails_while_the_database_is_away, batch_size=1, waiting=waiting
    ) as probe:
        lag = probe.consumer.metrics.consumer_lag

        def behind() -> float:
            return sum(sample.value for metric in lag.collect() for sample in metric.samples)

        async def four_behind() -> bool:
            return behind() == 4

        await wait_for(four_behind)
        labels = {sample.labels["topic"] for metric in lag.collect() for sample in metric.samples}
        assert labels == {probe.topic(TOPIC)}
        database_away = False

        async def all_applied() -> bool:
            return len(await probe.applied()) == 5 and behind() == 0

        await wait_for(all_applied, timeout=40)


async def test_the_offsets_of_the_last_batch_are_committed_without_waiting_for_another(
    broker: EmbeddedBroker, databases: Databases
) -> None:
    """The offsets of a batch go to the broker while the next batch is fetched; the last batch's
    go too, though no batch follows it: the group's committed offsets reach the end of the log."""
    async with running_probe(broker, databases, never) as probe:
        events = [purchase(uuid.uuid4()) for _ in range(6)]
        await produce_events(broker.bootstrap, probe.topic(TOPIC), events)

        async def all_applied() -> bool:
            return len(await probe.applied()) == len(events)

        await wait_for(all_applied)
        reader = AIOKafkaConsumer(
            bootstrap_servers=broker.bootstrap,
            group_id=probe.consumer.group_id,
            enable_auto_commit=False,
        )
        await reader.start()
        try:
            await reader.topics()  # the metadata of every topic, this one's partitions among them
            partitions = [
                TopicPartition(probe.topic(TOPIC), partition)
                for partition in sorted(reader.partitions_for_topic(probe.topic(TOPIC)) or ())
            ]
            ends: dict[TopicPartition, int] = await reader.end_offsets(partitions)

            async def committed_to_the_end() -> bool:
                committed: dict[TopicPartition, int] = {
                    partition: await reader.committed(partition) or 0 for partition in partitions
                }
                return committed == ends

            await wait_for(committed_to_the_end)
        finally:
            await reader.stop()
        assert sum(ends.values()) == len(events)


async def test_what_a_reader_of_the_old_log_commits_into_the_new_one_positions_no_reader_of_it(
    own_broker: EmbeddedBroker, databases: Databases
) -> None:
    """A reader that has not noticed the new log yet may commit, into it, offsets it took from the
    old one (its client reconnects to the broker it knew, now empty). A reader of the new log takes
    none of them, not even after a rebalance, when a consumer takes its group's committed offsets:
    here they lie past everything the new log holds, and would hide its records."""
    async with running_probe(own_broker, databases, never) as probe:
        first = [purchase(uuid.uuid4()) for _ in range(8)]
        await produce_events(own_broker.bootstrap, probe.topic(TOPIC), first)

        async def applied(count: int) -> bool:
            return len(await probe.applied()) == count

        await wait_for(lambda: applied(8))
        old_group = probe.consumer.group_id

        assert own_broker.process is not None
        own_broker.process.kill()
        own_broker.process.wait()
        own_broker.start()
        await probe.bus.ensure_topics(probe.bus.topics)
        # Another reader of the old log (a second process, say) joins its group in the new log and
        # commits what it took from the old one on the partitions it is given.
        stale = member_of(own_broker, old_group, probe.topic(TOPIC))
        await stale.start()
        try:
            await wait_for(lambda: assigned(stale))
            hidden = sorted(partition.partition for partition in stale.assignment())
            partitions = len(stale.partitions_for_topic(probe.topic(TOPIC)) or ())
            await stale.commit(dict.fromkeys(stale.assignment(), len(first)))
        finally:
            await stale.stop()

        # The bus notices the new log; the consumer reads it as a consumer of the new log.
        assert await probe.bus.refresh_epoch() == 1
        marker = purchase(uuid.uuid4())
        await produce_events(own_broker.bootstrap, probe.topic(TOPIC), [marker])
        await wait_for(lambda: applied(9))

        # Another member joins the group and leaves: the consumer's partitions are assigned anew.
        member = member_of(own_broker, probe.consumer.group_id, probe.topic(TOPIC))
        await member.start()
        try:
            await wait_for(lambda: assigned(member))
        finally:
            await member.stop()

        # Records on the partitions whose commit lies past them.
        later = [purchase(customer) for customer in customers_on(hidden, among=partitions, count=6)]
        await produce_events(own_broker.bootstrap, probe.topic(TOPIC), later)
        await wait_for(lambda: applied(15))
        assert set(await probe.applied()) == {event.id for event in [*first, marker, *later]}


def member_of(broker: EmbeddedBroker, group: str, topic: str) -> AIOKafkaConsumer:
    """A plain member of ``group`` reading ``topic``, which commits only when told to."""
    return AIOKafkaConsumer(
        topic,
        bootstrap_servers=broker.bootstrap,
        group_id=group,
        enable_auto_commit=False,
        session_timeout_ms=2000,
        heartbeat_interval_ms=300,
    )


async def assigned(member: AIOKafkaConsumer) -> bool:
    await member.getmany(timeout_ms=100)
    return bool(member.assignment())


def customers_on(partitions: list[int], *, among: int, count: int) -> list[uuid.UUID]:
    """``count`` customers whose events go to one of ``partitions`` (of ``among``)."""
    found: list[uuid.UUID] = []
    while len(found) < count:
        customer = uuid.uuid4()
        if partition_for(str(customer).encode(), list(range(among))) in partitions:
            found.append(customer)
    return found
