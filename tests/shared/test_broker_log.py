"""The bus knows which broker log it writes to; a new log is noticed, recovered from, and reported."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Awaitable, Callable

import httpx
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import UnknownTopicOrPartitionError

from shared.broker import EmbeddedBroker
from shared.bus import EPOCH_HEADER, Bus, Outgoing
from shared.service import ServiceSpec, create_service_app
from shared.settings import ServiceSettings
from tests.harness import Databases, common_settings_for_tests, eventually


async def topics_on(bootstrap: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def test_looking_a_topic_up_does_not_create_it(broker: EmbeddedBroker) -> None:
    # A restarted broker would otherwise create every topic a client asks about, with its own
    # partition count, before csm creates them with the configured one.
    missing = f"t{uuid.uuid4().hex[:8]}.nowhere"
    consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=f"g{uuid.uuid4().hex}")
    await consumer.start()
    try:
        consumer.subscribe([missing])
        with contextlib.suppress(UnknownTopicOrPartitionError):
            await consumer.getmany(timeout_ms=1_000)
    finally:
        await consumer.stop()
    assert missing not in await topics_on(broker.bootstrap)


async def test_a_restarted_broker_is_a_new_log_with_the_topics_created_again(
    own_broker: EmbeddedBroker,
) -> None:
    bus = Bus(common_settings_for_tests(own_broker.bootstrap, "t."), client_id="log-test")
    await bus.start(["csm.customer"])
    try:
        first = bus.epoch
        assert await bus.refresh_epoch() == 0, "the same log is not a new one"

        assert own_broker.process is not None
        own_broker.process.kill()
        own_broker.process.wait()
        own_broker.start()

        async def new_generation() -> None:
            try:
                generation = await bus.refresh_epoch()
            except Exception as error:  # the broker is still starting
                raise AssertionError(type(error).__name__) from error
            assert generation == 1

        await eventually(new_generation, timeout=30)
        assert bus.epoch not in (None, first)
        assert "t.csm.customer" in await topics_on(own_broker.bootstrap)
    finally:
        await bus.stop()


async def test_records_carry_the_epoch_they_were_sent_for_and_a_stale_one_is_recognised(
    broker: EmbeddedBroker,
) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    bus = Bus(common_settings_for_tests(broker.bootstrap, prefix), client_id="stamp-test")
    await bus.start(["csm.customer"])
    try:
        assert bus.epoch is not None
        assert await bus.publish([Outgoing("csm.customer", b"k", b"current")], epoch=bus.epoch) == [True]
        assert await bus.publish([Outgoing("csm.customer", b"k", b"stale")], epoch="an-older-log") == [True]
        consumer = AIOKafkaConsumer(
            prefix + "csm.customer", bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest"
        )
        await consumer.start()
        try:
            records: list[ConsumerRecord[bytes, bytes]] = []
            while len(records) < 2:
                for batch in (await consumer.getmany(timeout_ms=1_000)).values():
                    records.extend(batch)
        finally:
            await consumer.stop()
        assert [dict(r.headers)[EPOCH_HEADER].decode() for r in records] == [bus.epoch, "an-older-log"]
        assert [bus.sent_to_another_log(r.headers) for r in records] == [False, True]
        assert not bus.sent_to_another_log([("content-type", b"application/json")]), "no stamp: not stale"
    finally:
        await bus.stop()


async def test_readiness_says_when_the_broker_is_gone_and_when_it_is_back(
    own_broker: EmbeddedBroker, databases: Databases
) -> None:
    spec = ServiceSpec(name="notify", title="t", description="t", version="0", routers=())
    common = common_settings_for_tests(own_broker.bootstrap, "t.").model_copy(
        update={"kafka_epoch_check_seconds": 0.2}
    )
    settings = ServiceSettings(database_url=await databases.create("notify"), port=0, common=common)
    app = create_service_app(spec, settings)
    runtime = app.state.runtime

    def broker_is(expected: str) -> Callable[[], Awaitable[None]]:
        async def check() -> None:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://s") as client:
                response = await client.get("/readyz")
            assert response.json()["checks"]["broker"] == expected
            assert response.status_code == (200 if expected == "ok" else 503)

        return check

    async with app.router.lifespan_context(app):
        await eventually(broker_is("ok"), timeout=30)
        assert own_broker.process is not None
        own_broker.process.kill()
        own_broker.process.wait()
        await eventually(broker_is("unreachable"), timeout=60)
        own_broker.start()
        await eventually(broker_is("ok"), timeout=60)
        assert runtime.bus.generation == 1
        assert runtime.relay.generation == 1, "the relay reconciled its outbox with the new log"
