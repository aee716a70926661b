"""One unit of work per transaction: what it stages happens with its commit, nothing of it on rollback."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from shared.broker import EmbeddedBroker
from shared.bus import Bus
from shared.db import Database, before_commit, erased_in, utcnow
from shared.events import REGISTRY, decode
from shared.messaging import bus_state
from shared.observability import Metrics
from shared.outbox import OutboxRelay, RelaySettings, stage
from shared.unit_of_work import Doorbell, Slot, UnitOfWork, unit_of
from tests.harness import Databases, common_settings_for_tests
from tests.shared.bus_helpers import read_all
from tests.shared.event_examples import example

TOPIC = "csm.customer"
SEEN: Slot[list[str]] = Slot("tests.seen")


@pytest.fixture
async def db(databases: Databases) -> AsyncIterator[Database]:
    database = Database(await databases.create("customer"))
    yield database
    await database.dispose()


@pytest.fixture
async def relay(db: Database, broker: EmbeddedBroker) -> AsyncIterator[OutboxRelay]:
    bus = Bus(common_settings_for_tests(broker.bootstrap, f"t{uuid.uuid4().hex[:10]}."), client_id="uow-test")
    await bus.start([TOPIC])
    yield OutboxRelay(db=db, bus=bus, metrics=Metrics(), settings=RelaySettings(batch_size=10))
    await bus.stop()


async def test_what_a_unit_stages_is_published_only_if_it_commits(
    db: Database, relay: OutboxRelay, broker: EmbeddedBroker
) -> None:
    customer_id = uuid.uuid4()
    with pytest.raises(RuntimeError):
        async with db.unit_of_work() as session:
            stage(example("csm.customer.registered.v1", customer_id), session=session, source="/tests")
            raise RuntimeError("the batch failed after staging")
    async with db.unit_of_work() as session:
        committed = stage(example("csm.purchase.recorded.v1", customer_id), session=session, source="/tests")

    await relay.sync_epoch()
    assert await relay.publish_pending() == 1
    assert await relay.publish_pending() == 0
    [record] = await read_all(broker.bootstrap, relay.bus.topic(TOPIC), expect=1)
    assert decode(record.value, REGISTRY).id == committed.id


async def test_after_commit_work_runs_once_committed_and_never_on_a_rollback(db: Database) -> None:
    ran: list[str] = []
    bell = Doorbell()

    async def seen_committed() -> None:
        # Runs after the commit: the row is there for another session to read.
        async with db.read() as other:
            ran.append(str(await other.scalar(sa.select(bus_state.c.value).where(bus_state.c.name == "k"))))

    with bell.listen() as listening, pytest.raises(RuntimeError):
        async with db.unit_of_work() as session:
            await session.execute(bus_state.insert().values(name="k", value="v1", updated_at=utcnow()))
            unit_of(session).run_after_commit(seen_committed)
            unit_of(session).run_after_commit(lambda: ran.append("plain"))
            unit_of(session).ring_after_commit(bell)
            raise RuntimeError("rolled back")
    assert ran == []
    assert not listening.is_set()

    with bell.listen() as listening:
        async with db.unit_of_work() as session:
            await session.execute(bus_state.insert().values(name="k", value="v2", updated_at=utcnow()))
            unit_of(session).run_after_commit(seen_committed)
            unit_of(session).run_after_commit(lambda: ran.append("plain"))
            unit_of(session).ring_after_commit(bell)
            assert ran == []
    assert ran == ["v2", "plain"]
    assert listening.is_set()


async def test_before_commit_hooks_run_inside_the_transaction_and_a_hook_may_stage_more(
    db: Database, relay: OutboxRelay, broker: EmbeddedBroker
) -> None:
    customer_id = uuid.uuid4()
    order: list[str] = []

    async def late(*, session: AsyncSession) -> None:
        order.append("hook")
        stage(example("csm.purchase.refunded.v1", customer_id), session=session, source="/tests")

    async with db.unit_of_work() as session:
        stage(example("csm.customer.registered.v1", customer_id), session=session, source="/tests")
        before_commit(late, session=session)
        before_commit(late, session=session)  # once per unit, however often asked
    assert order == ["hook"]
    await relay.sync_epoch()
    assert await relay.publish_pending() == 2


async def test_nothing_of_a_unit_carries_over_to_the_next(db: Database) -> None:
    async with db.unit_of_work() as session:
        first: UnitOfWork = unit_of(session)
        first.cache.put(SEEN, ["first"])
        erased_in(session)
        assert first.erased
        stage(example("csm.customer.registered.v1", uuid.uuid4()), session=session, source="/tests")
    async with db.unit_of_work() as session:
        unit = unit_of(session)
        assert unit.cache.get(SEEN) is None
        assert not unit.erased
        assert unit.staged == []
    with pytest.raises(RuntimeError):
        async with db.unit_of_work() as session:
            unit_of(session).cache.put(SEEN, ["rolled back"])
            raise RuntimeError
    async with db.read() as session:
        assert unit_of(session).cache.get(SEEN) is None


async def test_a_doorbell_wakes_every_listener_and_forgets_those_that_left() -> None:
    bell = Doorbell()
    with bell.listen() as one, bell.listen() as two:
        bell.ring()
        assert one.is_set() and two.is_set()
        one.clear()
        bell.ring()
        assert one.is_set()
    assert bell.listeners == 0


def test_a_session_that_is_not_a_databases_has_no_unit() -> None:
    from sqlalchemy.orm import Session

    with pytest.raises(TypeError):
        unit_of(Session())
