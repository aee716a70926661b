"""The transactional outbox and its relay, on a real database and broker."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import sqlalchemy as sa

from services.customer.models import Customer
from shared.broker import EmbeddedBroker
from shared.bus import EPOCH_HEADER, Bus
from shared.db import Database, utcnow
from shared.events import CONTENT_TYPE, REGISTRY, decode
from shared.messaging import bus_state, outbox_message
from shared.observability import Metrics
from shared.outbox import OutboxRelay, RelaySettings, stage
from tests.harness import Databases, common_settings_for_tests
from tests.shared.bus_helpers import read_all
from tests.shared.event_examples import example

TOPIC = "csm.customer"


@pytest.fixture
async def db(databases: Databases) -> AsyncIterator[Database]:
    database = Database(await databases.create("customer"))
    yield database
    await database.dispose()


@pytest.fixture
async def relay(db: Database, broker: EmbeddedBroker) -> AsyncIterator[OutboxRelay]:
    bus = Bus(
        common_settings_for_tests(broker.bootstrap, f"t{uuid.uuid4().hex[:10]}."), client_id="relay-test"
    )
    await bus.start([TOPIC])
    relay = OutboxRelay(db=db, bus=bus, metrics=Metrics(), settings=RelaySettings(batch_size=2))
    yield relay
    await relay.settled()
    await bus.stop()


def a_customer() -> Customer:
    now = utcnow()
    return Customer(
        id=uuid.uuid4(),
        kind="individual",
        name="Chen Jing",
        locale="zh-CN",
        time_zone="Asia/Shanghai",
        status="active",
        created_at=now,
        updated_at=now,
    )


async def outbox_rows(db: Database) -> list[sa.Row[tuple[object, ...]]]:
    async with db.read() as session:
        return list((await session.execute(sa.select(outbox_message).order_by(outbox_message.c.seq))).all())


async def test_staged_events_commit_with_the_state_change_and_roll_back_with_it(db: Database) -> None:
    customer = a_customer()
    with db.doorbells.outbox.listen() as relay_bell, pytest.raises(RuntimeError):
        async with db.unit_of_work() as session:
            session.add(customer)
            stage(example("csm.customer.registered.v1", customer.id), session=session, source="/tests")
            raise RuntimeError("the request failed after staging")
    async with db.read() as session:
        assert await session.get(Customer, customer.id) is None
    assert await outbox_rows(db) == []
    assert not relay_bell.is_set(), "a rollback has nothing for the relay"

    with db.doorbells.outbox.listen() as relay_bell:
        async with db.unit_of_work() as session:
            session.add(customer)
            envelope = stage(
                example("csm.customer.registered.v1", customer.id), session=session, source="/tests"
            )
    [row] = await outbox_rows(db)
    assert (row.event_id, row.topic, row.key, row.event_type) == (
        envelope.id,
        TOPIC,
        str(customer.id),
        "csm.customer.registered.v1",
    )
    assert row.published_at is None
    assert relay_bell.is_set(), "the commit should wake the relay"


async def test_the_relay_publishes_in_commit_order_and_marks_what_the_broker_acknowledged(
    db: Database, relay: OutboxRelay, broker: EmbeddedBroker
) -> None:
    customer_id = uuid.uuid4()
    staged = []
    for event_type in ("csm.customer.registered.v1", "csm.purchase.recorded.v1", "csm.purchase.refunded.v1"):
        async with db.unit_of_work() as session:
            staged.append(stage(example(event_type, customer_id), session=session, source="/tests"))

    assert await relay.publish_pending() == 2  # the batch size
    assert await relay.publish_pending() == 1
    assert await relay.publish_pending() == 0

    records = await read_all(broker.bootstrap, relay.bus.topic(TOPIC), expect=3)
    assert [decode(r.value, REGISTRY).id for r in records] == [e.id for e in staged]
    assert {r.key for r in records} == {str(customer_id).encode()}
    assert all(dict(r.headers)["content-type"] == CONTENT_TYPE.encode() for r in records)
    await relay.settled()
    assert all(row.published_at is not None for row in await outbox_rows(db))
    assert relay.metrics.outbox_published.labels(TOPIC)._value.get() == 3


async def test_the_relay_sends_the_next_batch_while_the_last_one_waits_to_be_marked(
    db: Database, relay: OutboxRelay, broker: EmbeddedBroker
) -> None:
    """Marking a batch published is a write, which may wait for another transaction (on SQLite, any
    writer's): the next batch goes out meanwhile, and what was sent is not sent again."""
    customer_id = uuid.uuid4()
    staged = []
    for event_type in ("csm.customer.registered.v1", "csm.purchase.recorded.v1", "csm.purchase.refunded.v1"):
        async with db.unit_of_work() as session:
            staged.append(stage(example(event_type, customer_id), session=session, source="/tests"))
    await relay.sync_epoch()

    async with db.unit_of_work() as writer:
        # Holds the write lock on SQLite and the outbox rows' locks on PostgreSQL until the block ends.
        await writer.execute(sa.select(outbox_message.c.seq).with_for_update())
        await writer.execute(bus_state.update().where(bus_state.c.name == "none").values(value="x"))
        async with asyncio.timeout(20):  # the relay that waited for its marking would wait for ever here
            assert await relay.publish_pending() == 2  # the batch size
            assert await relay.publish_pending() == 1
            assert await relay.publish_pending() == 0
        assert all(row.published_at is None for row in await outbox_rows(db))
    await relay.settled()
    assert all(row.published_at is not None for row in await outbox_rows(db))
    assert await relay.publish_pending() == 0
    records = await read_all(broker.bootstrap, relay.bus.topic(TOPIC), expect=4, timeout_ms=3_000)
    assert [decode(r.value, REGISTRY).id for r in records] == [e.id for e in staged]


async def test_a_broker_that_lost_its_log_gets_the_retained_events_again(
    db: Database, relay: OutboxRelay, broker: EmbeddedBroker
) -> None:
    customer_id = uuid.uuid4()
    async with db.unit_of_work() as session:
        recent = stage(example("csm.customer.registered.v1", customer_id), session=session, source="/tests")
        old = stage(example("csm.purchase.recorded.v1", customer_id), session=session, source="/tests")
    await relay.sync_epoch()
    while await relay.publish_pending():
        pass
    async with db.unit_of_work() as session:
        # One event is older than the retention window: it is not replayed.
        await session.execute(
            outbox_message.update()
            .where(outbox_message.c.event_id == old.id)
            .values(created_at=utcnow() - relay.settings.retention - timedelta(hours=1))
        )

    await relay.sync_epoch()  # same broker, same log: nothing to do
    assert all(row.published_at is not None for row in await outbox_rows(db))

    async with db.unit_of_work() as session:  # as if the broker had restarted empty
        await session.execute(bus_state.update().values(value="an-earlier-broker"))
    await relay.sync_epoch()
    pending = {row.event_id for row in await outbox_rows(db) if row.published_at is None}
    assert pending == {recent.id}
    assert await relay.publish_pending() == 1
    records = await read_all(broker.bootstrap, relay.bus.topic(TOPIC), expect=3)
    assert [decode(r.value, REGISTRY).id for r in records] == [recent.id, old.id, recent.id]


async def test_after_a_batch_lands_in_a_new_log_nothing_more_is_sent_before_the_replay(db: Database) -> None:
    """A broker that restarted empty may take one batch stamped for the log that is gone (the relay
    cannot know before it asks); the relay asks after every batch, so the next thing it sends is the
    replay, in order, stamped for the new log."""
    with EmbeddedBroker() as broker:
        bus = Bus(common_settings_for_tests(broker.bootstrap, "t."), client_id="relay-restart-test")
        await bus.start([TOPIC])
        relay = OutboxRelay(db=db, bus=bus, metrics=Metrics(), settings=RelaySettings(batch_size=2))
        try:
            customer_id = uuid.uuid4()
            staged = []
            for _ in range(5):
                async with db.unit_of_work() as session:
                    purchase = example("csm.purchase.recorded.v1", customer_id)
                    staged.append(stage(purchase, session=session, source="/tests"))
            await relay.sync_epoch()
            assert await relay.publish_pending() == 2
            first_log = bus.epoch

            assert broker.process is not None
            broker.process.kill()
            broker.process.wait()
            broker.start()
            # Another service notices first and makes the topics, so the relay's next batch is taken.
            other = Bus(common_settings_for_tests(broker.bootstrap, "t."), client_id="other-service")
            await other.start([TOPIC])
            await other.stop()

            async with asyncio.timeout(60):
                while True:
                    try:
                        sent = await relay.publish_pending()
                        break
                    except Exception:  # the producer is still reconnecting
                        await asyncio.sleep(0.2)
            assert sent == 0, "a batch the new log took for the old one counts as not published"
            assert bus.generation == 1, "the relay asked which log took the batch before going on"

            while await relay.publish_pending():
                pass
            await relay.settled()
            records = await read_all(broker.bootstrap, bus.topic(TOPIC), expect=7, timeout_ms=5_000)
            stamps = [dict(r.headers)[EPOCH_HEADER].decode() for r in records]
            ids = [decode(r.value, REGISTRY).id for r in records]
            assert stamps[:2] == [first_log] * 2 and ids[:2] == [e.id for e in staged[2:4]]
            assert stamps[2:] == [bus.epoch] * 5 and ids[2:] == [e.id for e in staged]
        finally:
            await relay.settled()
            await bus.stop()


async def test_purge_forgets_published_events_past_retention_but_never_pending_ones(
    db: Database, relay: OutboxRelay
) -> None:
    customer_id = uuid.uuid4()
    async with db.unit_of_work() as session:
        published = stage(
            example("csm.customer.registered.v1", customer_id), session=session, source="/tests"
        )
        pending = stage(example("csm.purchase.recorded.v1", customer_id), session=session, source="/tests")
    long_ago = utcnow() - relay.settings.retention - timedelta(days=1)
    async with db.unit_of_work() as session:
        await session.execute(outbox_message.update().values(created_at=long_ago))
        await session.execute(
            outbox_message.update()
            .where(outbox_message.c.event_id == published.id)
            .values(published_at=long_ago)
        )
    await relay.purge()
    assert [row.event_id for row in await outbox_rows(db)] == [pending.id]
