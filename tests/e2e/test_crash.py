"""Kill the whole running system mid-stream and start it again: nothing lost, nothing twice.

The system is the real ``csm up`` (embedded broker, four service processes). The broker keeps
its log in memory, so after the restart everything not yet consumed exists only in the
services' outboxes: this checks that they refill it and that the inboxes absorb the replay.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from services.registry import SERVICES
from tests.e2e.system import System, count
from tests.harness import Databases, auth

pytestmark = pytest.mark.e2e

CUSTOMERS = 10
PURCHASES_EACH = 60  # 600 in all
AMOUNT = "1000.00"  # iron after 1, gold after 10, platinum after 50 (and 5 purchases): three moves each
KILL_AFTER = 250


async def test_sigkill_in_the_middle_of_a_purchase_stream_loses_and_duplicates_nothing(
    tmp_path: Path, databases: Databases
) -> None:
    urls = {name: await databases.create(name, migrate=False) for name in SERVICES}
    system = System(tmp_path, urls)
    system.start()
    try:
        await system.wait_ready()
        async with httpx.AsyncClient(timeout=5, headers=auth()) as client:
            customer_ids = []
            for index in range(CUSTOMERS):
                created = await client.post(
                    f"{system.url('customer')}/customers", json={"name": f"Customer {index}"}
                )
                assert created.status_code == 201, created.text
                customer_ids.append(created.json()["id"])

            accepted = 0
            killed = asyncio.Event()
            restarted = asyncio.Event()

            async def post_until_accepted(customer_id: str, order: str) -> None:
                nonlocal accepted
                body = {"order_id": order, "amount": AMOUNT, "currency": "CNY"}
                while True:
                    try:
                        response = await client.post(
                            f"{system.url('customer')}/customers/{customer_id}/purchases", json=body
                        )
                    except httpx.HTTPError:
                        await asyncio.sleep(
                            0.2
                        )  # the system is down: a client retries with the same order id
                        continue
                    assert response.status_code in (200, 201), response.text
                    accepted += 1
                    if accepted == KILL_AFTER and not killed.is_set():
                        system.kill()
                        killed.set()
                        system.start()
                        await system.wait_ready()
                        restarted.set()
                    return

            orders = [
                (customer_id, f"{customer_id[:8]}-{n}")
                for n in range(PURCHASES_EACH)
                for customer_id in customer_ids
            ]
            queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
            for order in orders:
                queue.put_nowait(order)

            async def worker() -> None:
                while not queue.empty():
                    customer_id, order = queue.get_nowait()
                    await post_until_accepted(customer_id, order)

            await asyncio.gather(*(worker() for _ in range(CUSTOMERS)))
            assert killed.is_set() and restarted.is_set()
            assert accepted == CUSTOMERS * PURCHASES_EACH

            async def settled() -> bool:
                segments = [
                    (await client.get(f"{system.url('segmentation')}/segments/{cid}")).json()
                    for cid in customer_ids
                ]
                return all(s.get("figures", {}).get("frequency") == PURCHASES_EACH for s in segments)

            deadline = asyncio.get_running_loop().time() + 120
            while not await settled():
                assert asyncio.get_running_loop().time() < deadline, "segmentation never caught up"
                await asyncio.sleep(0.5)

            for customer_id in customer_ids:
                segment = (await client.get(f"{system.url('segmentation')}/segments/{customer_id}")).json()
                assert segment["figures"]["frequency"] == PURCHASES_EACH
                assert segment["figures"]["monetary"] == f"{PURCHASES_EACH * 1000}.00"
                assert segment["tier"] == "platinum"
                history = (
                    await client.get(
                        f"{system.url('segmentation')}/segments/{customer_id}/history", params={"limit": 200}
                    )
                ).json()
                assert history["next_cursor"] is None
                changes = history["items"]
                # Each move in the pyramid recorded once; stage and segment moves are recorded too.
                assert [c["tier"] for c in changes if "tier" in c["changed"]] == ["iron", "gold", "platinum"]
                causes = [c["cause_event_id"] for c in changes]
                assert len(causes) == len(set(causes)), (
                    "one cause recorded two changes: a replay was applied twice"
                )

            async def notifications_of(customer_id: str) -> list[str]:
                found = await client.get(
                    f"{system.url('notify')}/notifications", params={"customer_id": customer_id}
                )
                return sorted(item["title"] for item in found.json()["items"])

            # The first purchase is thanked; upgrades to gold and platinum are welcomed (iron is not),
            # in the default locale zh-CN.
            expected = sorted(["感谢您的首次购买", "欢迎成为金卡会员", "欢迎成为白金会员"])
            deadline = asyncio.get_running_loop().time() + 60
            while [await notifications_of(c) for c in customer_ids] != [expected] * CUSTOMERS:
                assert asyncio.get_running_loop().time() < deadline, [
                    await notifications_of(c) for c in customer_ids
                ]
                await asyncio.sleep(0.5)

        assert await count(urls["customer"], "SELECT count(*) FROM purchase") == CUSTOMERS * PURCHASES_EACH
        assert (
            await count(urls["segmentation"], "SELECT count(*) FROM tier_change WHERE previous_tier <> tier")
            == 3 * CUSTOMERS
        )
        assert await count(urls["notify"], "SELECT count(*) FROM notification") == 3 * CUSTOMERS
        # The replay really happened: the first run's events were published again into the new broker.
        assert "replaying" in (tmp_path / "up-2.log").read_text()
    finally:
        system.stop()
