"""Kill only the broker, twice, under a stream of purchases: the running services recover by themselves.

The system is the real ``csm up``. The embedded broker keeps its log in memory, so each restart
is a new, empty log under services that keep running and keep accepting purchases: they must
notice it, create their topics again, republish what they retain in its original order, and
read the new log from its start, while ``csm up`` starts the broker again.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from services.registry import SERVICES
from shared.bus import EPOCH_HEADER
from shared.events import EPOCH_TOPIC, REGISTRY, TOPICS, decode
from shared.settings import CommonSettings
from tests.e2e.system import System, count, kill_broker
from tests.harness import Databases, auth

pytestmark = pytest.mark.e2e

CUSTOMERS = 40
PURCHASES_EACH = 50  # 2,000 in all
AMOUNT = "1000.00"  # iron after 1, gold after 10, platinum after 50: three moves each
KILLS_AFTER = (600, 1300)
WORKERS = 8
# The System runs on the default partition count (its environment has no CSM_KAFKA_PARTITIONS).
PARTITIONS = CommonSettings.model_fields["kafka_partitions"].default


async def test_the_broker_killed_twice_under_a_purchase_stream_loses_and_duplicates_nothing(
    tmp_path: Path, databases: Databases
) -> None:
    urls = {name: await databases.create(name, migrate=False) for name in SERVICES}
    system = System(tmp_path, urls)
    system.env["CSM_KAFKA_EPOCH_CHECK_SECONDS"] = "1"
    system.start()
    try:
        await system.wait_ready()
        async with httpx.AsyncClient(timeout=10, headers=auth()) as client:
            customer_ids = []
            for index in range(CUSTOMERS):
                created = await client.post(
                    f"{system.url('customer')}/customers",
                    json={"name": f"Customer {index}", "email": f"c{index}@example.com"},
                )
                assert created.status_code == 201, created.text
                customer_ids.append(created.json()["id"])

            orders = [(c, f"{c[:8]}-{n}") for n in range(PURCHASES_EACH) for c in customer_ids]
            queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
            for order in orders:
                queue.put_nowait(order)
            accepted = 0
            kills: list[int] = []

            async def worker() -> None:
                nonlocal accepted
                while not queue.empty():
                    customer_id, order = queue.get_nowait()
                    body = {"order_id": order, "amount": AMOUNT, "currency": "CNY"}
                    response = await client.post(
                        f"{system.url('customer')}/customers/{customer_id}/purchases", json=body
                    )
                    assert response.status_code == 201, response.text
                    accepted += 1
                    if accepted in KILLS_AFTER:
                        kills.append(kill_broker(system.kafka_port))

            await asyncio.gather(*(worker() for _ in range(WORKERS)))
            assert accepted == len(orders) and len(kills) == 2

            async def settled() -> bool:
                for customer_id in customer_ids:
                    segment = await client.get(f"{system.url('segmentation')}/segments/{customer_id}")
                    if segment.status_code != 200 or segment.json()["figures"]["frequency"] != PURCHASES_EACH:
                        return False
                return True

            deadline = asyncio.get_running_loop().time() + 180
            while not await settled():
                assert asyncio.get_running_loop().time() < deadline, "segmentation never caught up"
                await asyncio.sleep(1)

            # Every purchase counted exactly once, and each move in the pyramid recorded once.
            for customer_id in customer_ids:
                segment = (await client.get(f"{system.url('segmentation')}/segments/{customer_id}")).json()
                assert segment["figures"]["monetary"] == f"{PURCHASES_EACH * 1000}.00"
                assert segment["tier"] == "platinum"
            assert (
                await count(
                    urls["segmentation"], "SELECT count(*) FROM tier_change WHERE previous_tier <> tier"
                )
                == 3 * CUSTOMERS
            )

            # Exactly the promised notifications: a thank-you for the first purchase, a welcome to
            # gold and one to platinum, each once.
            expected = sorted(["感谢您的首次购买", "欢迎成为金卡会员", "欢迎成为白金会员"])

            async def notifications() -> list[list[str]]:
                found = []
                for customer_id in customer_ids:
                    page = await client.get(
                        f"{system.url('notify')}/notifications", params={"customer_id": customer_id}
                    )
                    found.append(sorted(item["title"] for item in page.json()["items"]))
                return found

            deadline = asyncio.get_running_loop().time() + 60
            while (found := await notifications()) != [expected] * CUSTOMERS:
                assert asyncio.get_running_loop().time() < deadline, found
                await asyncio.sleep(1)

            # Every copy of the tier equals segmentation's.
            async def platinum_copies() -> dict[str, int]:
                return {
                    "customer": await count(
                        urls["customer"], "SELECT count(*) FROM customer WHERE tier = 'platinum'"
                    ),
                    "notify": await count(
                        urls["notify"], "SELECT count(*) FROM contact WHERE tier = 'platinum'"
                    ),
                    "complaints": await count(
                        urls["complaints"], "SELECT count(*) FROM customer_tier WHERE tier = 'platinum'"
                    ),
                }

            everywhere = dict.fromkeys(("customer", "notify", "complaints"), CUSTOMERS)
            deadline = asyncio.get_running_loop().time() + 60
            while (copies := await platinum_copies()) != everywhere:
                # Which copy, and how many of its customers, if one never catches up.
                assert asyncio.get_running_loop().time() < deadline, f"tier copies disagree: {copies}"
                await asyncio.sleep(1)

        # Nothing left unpublished, nothing counted twice.
        for name in SERVICES:
            assert (
                await count(urls[name], "SELECT count(*) FROM outbox_message WHERE published_at IS NULL") == 0
            )
        assert await count(urls["customer"], "SELECT count(*) FROM purchase") == len(orders)
        assert await count(urls["notify"], "SELECT count(*) FROM notification") == 3 * CUSTOMERS

        log = (tmp_path / "up-1.log").read_text()
        assert log.count("starting it again") == 2, system.log_tail()
        await check_the_new_log(system, customer_ids)
    finally:
        system.stop()


async def check_the_new_log(system: System, customer_ids: list[str]) -> None:
    """The last log has the configured partitions and each customer's registration before their purchases.

    Only the records stamped with this log's epoch count: the others were sent before their
    producer noticed the new log, are skipped by every consumer, and were sent again.
    """
    bootstrap = f"127.0.0.1:{system.kafka_port}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics([TOPICS["customer"], TOPICS["segmentation"]])
        assert {d["topic"]: len(d["partitions"]) for d in described} == {
            TOPICS["customer"]: PARTITIONS,
            TOPICS["segmentation"]: PARTITIONS,
        }
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        epoch_partition = TopicPartition(EPOCH_TOPIC, 0)
        partitions = [TopicPartition(TOPICS["customer"], p) for p in range(PARTITIONS)]
        consumer.assign([epoch_partition, *partitions])
        await consumer.seek_to_beginning(epoch_partition, *partitions)
        ends = await consumer.end_offsets(partitions)
        epoch: bytes | None = None
        seen: dict[str, list[str]] = defaultdict(list)

        async def unread() -> bool:
            return any([await consumer.position(p) < ends[p] for p in partitions])

        while epoch is None or await unread():
            for partition, records in (await consumer.getmany(timeout_ms=1000)).items():
                for record in records:
                    if partition == epoch_partition:
                        epoch = epoch or record.value
                        continue
                    seen[record.key.decode() if record.key else ""].append(
                        f"{dict(record.headers).get(EPOCH_HEADER, b'').decode()} "
                        f"{decode(record.value, REGISTRY).type}"
                    )
        assert epoch is not None
        current = epoch.decode()
        for customer_id in customer_ids:
            applied = [entry.split(" ", 1)[1] for entry in seen[customer_id] if entry.startswith(current)]
            assert applied[0] == "csm.customer.registered.v1", (customer_id, applied[:3])
            assert applied.count("csm.purchase.recorded.v1") == PURCHASES_EACH
    finally:
        await consumer.stop()
