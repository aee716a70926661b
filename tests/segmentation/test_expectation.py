"""Risk moves carry P(alive) and the purchases the buying model expects, from the batch and from events."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from typing import Any, cast

import httpx
import orjson
from fastapi import FastAPI

from services.segmentation.policy import DEFAULT_POLICY
from shared.events.customer import PurchaseRecorded
from shared.roles import Role
from tests.harness import Databases, auth
from tests.segmentation.test_bulk import contents, purchase, records, service


async def risk_moves(app: FastAPI) -> set[bytes]:
    return {
        orjson.dumps(e[3]) for e in (await contents(app))["events"] if e[2] == "csm.segment.risk_changed.v1"
    }


async def test_risk_moves_announce_p_alive_and_expected_purchases_over_the_horizon(
    databases: Databases,
) -> None:
    rng = random.Random(7)
    customers = [uuid.uuid4() for _ in range(300)]
    history = [
        purchase(customer, "100.00", rng.uniform(0, 600))
        for customer in customers
        for _ in range(rng.choice((1, 1, 2, 4)))
    ]
    last: dict[uuid.UUID, float] = {}
    for event in history:
        bought = cast(PurchaseRecorded, event.data)
        last[bought.customer_id] = max(last.get(bought.customer_id, 0.0), bought.purchased_at.timestamp())
    returning = min(last, key=last.__getitem__)  # the longest silent: lost
    app, consumer = await service(databases, bulk=True)
    manager = auth(Role.manager)
    try:
        await consumer.process(records(history))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://seg") as client:
            assert (await client.post("/cut-points/recompute", headers=manager)).status_code == 200
            assert (await client.get("/cut-points", headers=manager)).json()["bgnbd"]["model"] == "pareto_nbd"
            before_the_fit = await risk_moves(app)
            # A lost customer buys again: the per-event path announces their risk move.
            await consumer.process(records([purchase(returning, "100.00", 0)]))
            on_event = await risk_moves(app) - before_the_fit
            # Half a year later the batch finds many lapsed.
            app.state.runtime.clock.advance(timedelta(days=180))
            assert (await client.post("/cut-points/recompute", headers=manager)).status_code == 200
            by_batch = await risk_moves(app) - before_the_fit - on_event
    finally:
        await app.state.runtime.db.dispose()
    [returned] = [orjson.loads(e) for e in on_event]
    assert returned["customer_id"] == str(returning) and returned["risk"] == "low"
    assert returned["expected_purchases"] > 0
    moved: list[dict[str, Any]] = [returned, *(orjson.loads(e) for e in by_batch)]
    assert len(moved) > 20
    for announced in moved:
        assert announced["expected_purchases"] >= 0
        assert announced["expected_purchases_days"] == DEFAULT_POLICY.bgnbd.horizon_days
        assert 0 <= announced["probability_alive"] <= 1
    # Silent one-time buyers are not all certain to be alive.
    assert min(e["probability_alive"] for e in moved) < 1
