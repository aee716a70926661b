"""How intake takes a complaint: one query for what it reads, one statement per table it writes,
an Idempotency-Key that expires, and ids whose reference tells complaints apart."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine.default import CACHE_MISS, NO_CACHE_KEY

from services.complaints.mail import reference_of
from services.complaints.policy import default_policy
from shared.clock import ManualClock
from shared.roles import Role
from tests.complaints.helpers import TUESDAY_10_SHANGHAI, open_complaint, set_tier, staff
from tests.harness import RunningService, Stack


@pytest.fixture
async def complaints(stack: Stack) -> RunningService:
    return await stack.start("complaints", clock=ManualClock(TUESDAY_10_SHANGHAI), run_workers=False)


def _statements(complaints: RunningService) -> list[str]:
    """The SQL the service's engine runs from now on (transaction control left out, and the ring that
    a process without the relay sends it after the commit on PostgreSQL: ``shared.outbox_doorbell``)."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        first = statement.split(None, 1)[0].upper()
        if first in {"BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"} or statement == "SELECT 1":
            return
        if "pg_notify(" not in statement:
            seen.append(" ".join(statement.split()))

    sa.event.listen(complaints.runtime.db.engine.sync_engine, "before_cursor_execute", record)
    return seen


def _kinds(statements: list[str]) -> list[str]:
    """Each statement as its verb and, for a write, its tables: ``INSERT complaint``, ``SELECT``, and
    ``INSERT complaint, sla_clock`` for one that inserts into both (data-modifying CTEs)."""
    kinds = []
    for statement in statements:
        tables = re.findall(r"INSERT INTO (\w+)", statement)
        kinds.append(f"INSERT {', '.join(tables)}" if tables else statement.split(None, 1)[0])
    return kinds


async def test_intake_reads_once_and_writes_each_table_once(complaints: RunningService) -> None:
    customer = uuid.uuid4()
    await set_tier(complaints, customer, "gold")
    body = {"customer_id": str(customer), "channel": "app", "category": "delivery", "description": "Late"}
    statements = _statements(complaints)
    response = await complaints.client.post(
        "/complaints", json=body, headers={**staff(), "Idempotency-Key": "one-trip"}
    )
    assert response.status_code == 201 and response.json()["tier"] == "gold"
    if complaints.runtime.db.dialect == "postgresql":
        # One round trip for the complaint, its first step and its two clocks.
        writes = ["INSERT complaint, complaint_transition, sla_clock, sla_clock", "INSERT outbox_message"]
    else:
        writes = [
            "INSERT complaint",
            "INSERT complaint_transition",
            "INSERT sla_clock",
            "INSERT outbox_message",
        ]
    # What intake reads comes back from the statement that claims the Idempotency-Key.
    assert _kinds(statements) == ["INSERT idempotency_key", *writes]
    assert len(response.json()["clocks"]) == 2
    statements.clear()
    without_key = await complaints.client.post("/complaints", json=body, headers=staff())
    assert without_key.status_code == 201 and without_key.json()["tier"] == "gold"
    assert _kinds(statements) == ["SELECT", *writes]


async def test_intake_compiles_no_statement_twice(complaints: RunningService) -> None:
    # Compiling intake's statements costs more than running them: SQLAlchemy must find each in its cache.
    compiled: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, _parameters: Any, context: Any, _many: bool) -> None:
        # (Statements given as SQL text to the driver, such as BEGIN IMMEDIATE, are never compiled.)
        if (
            context is not None
            and context.compiled is not None
            and context.cache_hit in (CACHE_MISS, NO_CACHE_KEY)
        ):
            compiled.append(" ".join(statement.split())[:60])

    sa.event.listen(complaints.runtime.db.engine.sync_engine, "before_cursor_execute", record)
    for visit_required in (False, True):
        body = {
            "customer_id": str(uuid.uuid4()),
            "channel": "app",
            "category": "delivery",
            "description": "Late",
            "visit_required": visit_required,
        }
        for key in ("first", "second"):
            headers = {**staff(), "Idempotency-Key": f"{key}-{visit_required}"}
            taken = await complaints.client.post("/complaints", json=body, headers=headers)
            assert taken.status_code == 201, taken.text
            if key == "first":
                compiled.clear()
        assert compiled == []


@pytest.mark.parametrize("visit_required", [False, True])
async def test_what_intake_answers_is_what_it_stored(
    complaints: RunningService, visit_required: bool
) -> None:
    customer = uuid.uuid4()
    await set_tier(complaints, customer, "gold")
    body = {
        "customer_id": str(customer),
        "channel": "phone",
        "category": "product_quality",
        "description": "Broken on arrival",
        "visit_required": visit_required,
    }
    taken = await complaints.client.post("/complaints", json=body, headers=staff())
    assert taken.status_code == 201, taken.text
    complaint = taken.json()
    # A visit is a third promise: three clocks, one statement all the same.
    assert len(complaint["clocks"]) == (3 if visit_required else 2)
    stored = await complaints.client.get(f"/complaints/{complaint['id']}", headers=staff())
    assert stored.status_code == 200 and stored.json() == complaint
    steps = await complaints.client.get(f"/complaints/{complaint['id']}/transitions", headers=staff())
    assert steps.status_code == 200
    [first] = steps.json()["items"]
    assert (first["from_status"], first["to_status"], first["step"]) == (None, "new", 0)


async def test_a_stored_policy_is_used_from_the_next_complaint_on(complaints: RunningService) -> None:
    first = await open_complaint(complaints)
    assert first["policy_version"] == 0
    policy = default_policy().model_dump(mode="json") | {"warning_share": 0.5}
    stored = await complaints.client.put("/complaint-policy", json=policy, headers=staff(Role.manager))
    assert stored.status_code == 200, stored.text
    second = await open_complaint(complaints)
    assert second["policy_version"] == 1
    # The new policy's warning share: half of 4 business hours from 10:00 Shanghai is 12:00 (04:00 UTC).
    [response] = [clock for clock in second["clocks"] if clock["target"] == "first_response"]
    assert response["warn_at"] == "2026-11-24T04:00:00Z"


async def test_a_key_past_its_time_to_live_makes_a_new_complaint(complaints: RunningService) -> None:
    body = {"customer_id": str(uuid.uuid4()), "channel": "app", "category": "billing", "description": "Twice"}
    headers = {**staff(), "Idempotency-Key": "old-key"}
    first = await complaints.client.post("/complaints", json=body, headers=headers)
    clock = complaints.runtime.clock
    assert isinstance(clock, ManualClock)
    clock.advance(timedelta(hours=23))
    repeat = await complaints.client.post("/complaints", json=body, headers=headers)
    assert (first.status_code, repeat.status_code) == (201, 200)
    assert repeat.json()["id"] == first.json()["id"]
    clock.advance(timedelta(hours=2))
    # 25 hours after the first request, past the default 24: the key is free again, even for another body.
    later = await complaints.client.post(
        "/complaints", json={**body, "description": "Again"}, headers=headers
    )
    assert later.status_code == 201 and later.json()["id"] != first.json()["id"]
    again = await complaints.client.post(
        "/complaints", json={**body, "description": "Again"}, headers=headers
    )
    assert again.status_code == 200 and again.json()["id"] == later.json()["id"]


async def test_complaints_taken_at_one_moment_have_references_of_their_own(
    complaints: RunningService,
) -> None:
    # The reference customers quote is the id's first eight hex digits: time-ordered ids would share them.
    customer = uuid.uuid4()
    ids = [uuid.UUID((await open_complaint(complaints, customer_id=customer))["id"]) for _ in range(5)]
    assert len({reference_of(complaint_id) for complaint_id in ids}) == 5
