"""The deadline scanner with a controllable clock: warning at the share, breach, the escalation ladder,
pauses, restarts and several scanners at once."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from services.complaints.models import Complaint
from services.complaints.policy import default_policy
from services.complaints.scanner import scan_once
from shared.clock import ManualClock
from shared.db import Database
from shared.roles import Role
from tests.complaints.helpers import TUESDAY_10_SHANGHAI, move, open_complaint, set_tier, staff, staged
from tests.harness import RunningService, Stack, eventually

T0 = TUESDAY_10_SHANGHAI


@pytest.fixture
async def complaints(stack: Stack) -> RunningService:
    return await stack.start("complaints", clock=ManualClock(T0), run_workers=False)


async def gold_complaint(complaints: RunningService, *, key_account: bool = False) -> dict[str, Any]:
    customer = uuid.uuid4()
    await set_tier(complaints, customer, "gold", key_account=key_account)
    return await open_complaint(complaints, customer_id=customer)


async def scan(complaints: RunningService, at: datetime, batch_size: int = 100) -> Any:
    return await scan_once(db=complaints.runtime.db, now=at, batch_size=batch_size, currency="CNY")


async def scanner_events(complaints: RunningService) -> list[tuple[str, dict[str, Any]]]:
    kinds = ("sla_warning", "sla_breached", "escalated")
    return [
        (kind.split(".")[2], json.loads(body)["data"])
        for kind, body in await staged(complaints)
        if kind.split(".")[2] in kinds
    ]


async def test_warns_at_three_quarters_breaches_at_the_due_time_and_climbs_the_ladder(
    complaints: RunningService,
) -> None:
    complaint = await gold_complaint(complaints)
    assert (await scan(complaints, T0 + timedelta(minutes=89))).complaints == 0
    # Gold responds within 2 hours: the warning comes at 90 minutes.
    assert (await scan(complaints, T0 + timedelta(minutes=90))).warnings == 1
    [(kind, warning)] = await scanner_events(complaints)
    assert (kind, warning["target"], warning["used_share"], warning["due_at"]) == (
        "sla_warning",
        "first_response",
        0.75,
        "2026-11-24T04:00:00Z",
    )
    assert (warning["tier"], warning["first_owner"]) == ("gold", "agent-1")
    passed = await scan(complaints, T0 + timedelta(hours=2))
    assert (passed.breaches, passed.escalations) == (1, 1)
    _, breach, escalation = await scanner_events(complaints)
    assert breach[1]["breached_at"] == breach[1]["due_at"] == "2026-11-24T04:00:00Z"
    assert (escalation[1]["level_name"], escalation[1]["must_act"], escalation[1]["target"]) == (
        "supervisor",
        "supervisor",
        "first_response",
    )
    # The supervisor has four hours before the manager is called; the ladder stops at the manager.
    assert (await scan(complaints, T0 + timedelta(hours=5, minutes=59))).escalations == 0
    assert (await scan(complaints, T0 + timedelta(hours=6))).escalations == 1
    assert (await scan(complaints, T0 + timedelta(hours=30))).escalations == 0
    levels = [e["level_name"] for kind, e in await scanner_events(complaints) if kind == "escalated"]
    assert levels == ["supervisor", "manager"]
    current = (await complaints.client.get(f"/complaints/{complaint['id']}", headers=staff())).json()
    assert current["escalation_level"] == 2 and current["first_owner"] == "agent-1"


async def test_a_key_account_climbs_to_the_key_account_director(complaints: RunningService) -> None:
    await gold_complaint(complaints, key_account=True)
    for hours in (2, 6, 10):
        assert (await scan(complaints, T0 + timedelta(hours=hours))).escalations == 1
    levels = [e["must_act"] for kind, e in await scanner_events(complaints) if kind == "escalated"]
    assert levels == ["supervisor", "manager", "key_account_director"]


async def test_nothing_is_sent_twice_and_a_kept_promise_stops_the_climb(complaints: RunningService) -> None:
    complaint = await gold_complaint(complaints)
    await scan(complaints, T0 + timedelta(hours=3))
    await scan(complaints, T0 + timedelta(hours=3))
    assert [kind for kind, _ in await scanner_events(complaints)] == ["sla_breached", "escalated"]
    complaints.app.state.runtime.clock.set(T0 + timedelta(hours=3))
    assert (await move(complaints, complaint["id"], "acknowledged")).status_code == 200
    # The response came late but it came: no manager is called for it.
    assert (await scan(complaints, T0 + timedelta(hours=8))).escalations == 0


async def test_no_warning_or_breach_while_waiting_on_the_customer(complaints: RunningService) -> None:
    complaint = await gold_complaint(complaints)
    clock: ManualClock = complaints.runtime.clock  # type: ignore[assignment]
    await move(complaints, complaint["id"], "acknowledged")
    await move(complaints, complaint["id"], "in_progress")
    clock.set(T0 + timedelta(hours=1))
    await move(complaints, complaint["id"], "waiting_on_customer")
    assert (await scan(complaints, T0 + timedelta(days=10))).complaints == 0
    clock.set(T0 + timedelta(days=10))
    await move(complaints, complaint["id"], "in_progress")
    # 47 hours of the 48 were left: the warning at 36 hours used comes 35 hours after resuming.
    assert (await scan(complaints, T0 + timedelta(days=10, hours=34, minutes=59))).warnings == 0
    assert (await scan(complaints, T0 + timedelta(days=10, hours=35))).warnings == 1


async def test_the_warning_share_is_policy(complaints: RunningService) -> None:
    policy = default_policy().model_dump(mode="json") | {"warning_share": 0.5}
    stored = await complaints.client.put("/complaint-policy", json=policy, headers=staff(Role.manager))
    assert stored.status_code == 200
    await gold_complaint(complaints)
    assert (await scan(complaints, T0 + timedelta(minutes=59))).warnings == 0
    assert (await scan(complaints, T0 + timedelta(minutes=60))).warnings == 1


async def test_a_scanner_that_was_down_catches_up_without_a_stale_warning(complaints: RunningService) -> None:
    await gold_complaint(complaints)
    done = await scan(complaints, T0 + timedelta(hours=3))
    assert (done.warnings, done.breaches, done.escalations) == (0, 1, 1)


async def test_due_times_survive_a_restart(stack: Stack, complaints: RunningService) -> None:
    complaint = await gold_complaint(complaints)
    # A fresh process on the same database, two hours later, with its workers running.
    later = await stack.start(
        "complaints",
        clock=ManualClock(T0 + timedelta(hours=2, minutes=1)),
        database_url=complaints.database_url,
        scan_interval_seconds=0.05,
    )

    async def breached() -> None:
        kinds = [kind for kind, _ in await scanner_events(later)]
        assert kinds == ["sla_breached", "escalated"]

    await eventually(breached, timeout=10)
    current = (await later.client.get(f"/complaints/{complaint['id']}", headers=staff())).json()
    assert current["clocks"][0]["breached_at"] == "2026-11-24T04:00:00Z"


async def test_concurrent_scanners_act_on_each_complaint_once(complaints: RunningService) -> None:
    for _ in range(30):
        await gold_complaint(complaints)
    other = Database(complaints.database_url)
    try:
        at = T0 + timedelta(minutes=95)
        results = await asyncio.gather(
            *(
                scan_once(db=db, now=at, batch_size=7, currency="CNY")
                for db in (complaints.runtime.db, other, complaints.runtime.db, other)
                for _ in range(3)
            )
        )
    finally:
        await other.dispose()
    assert sum(result.warnings for result in results) == 30
    warned = [
        event["complaint_id"] for kind, event in await scanner_events(complaints) if kind == "sla_warning"
    ]
    assert len(warned) == len(set(warned)) == 30


async def test_a_scanner_skips_a_complaint_another_transaction_holds(complaints: RunningService) -> None:
    if complaints.runtime.db.dialect != "postgresql":
        pytest.skip("SQLite has one writer at a time; SKIP LOCKED is PostgreSQL's")
    held, free = await gold_complaint(complaints), await gold_complaint(complaints)
    other = Database(complaints.database_url)
    try:
        async with other.unit_of_work() as session:
            await session.execute(
                sa.select(Complaint.id).where(Complaint.id == uuid.UUID(held["id"])).with_for_update()
            )
            done = await asyncio.wait_for(scan(complaints, T0 + timedelta(minutes=95)), timeout=10)
            assert done.warnings == 1
    finally:
        await other.dispose()
    [(_, warning)] = await scanner_events(complaints)
    assert warning["complaint_id"] == free["id"]
    assert (await scan(complaints, T0 + timedelta(minutes=96))).warnings == 1
