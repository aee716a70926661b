"""The audit log every service keeps (shared.audit), through one of them: filters, pages, the CSV export,
and that nothing changes an entry — no route does, and the database refuses to."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from shared.audit import audit_entry, from_csv
from shared.clock import ManualClock
from shared.roles import Role
from tests.complaints.helpers import TUESDAY_10_SHANGHAI
from tests.harness import RunningService, Stack, auth, problem
from tests.shared.audit_support import MANAGER, entries

T0 = TUESDAY_10_SHANGHAI


@pytest.fixture
async def logged(stack: Stack) -> RunningService:
    """Complaints with four entries an hour apart: three by manager-1, the last by a manager whose
    sign-in subject a spreadsheet would take for a formula."""
    clock = ManualClock(T0)
    complaints = await stack.start("complaints", clock=clock, run_workers=False)
    for hour, (subject, team, name) in enumerate(
        [
            ("manager-1", "billing", "Billing"),
            ("manager-1", "billing", '=HYPERLINK("http://evil.example","Billing")'),
            ("manager-1", "delivery", '-Delivery, "fast"\n配送'),
            ("=2+5", "delivery", "'Delivery"),
        ]
    ):
        clock.set(T0 + timedelta(hours=hour))
        answer = await complaints.client.put(
            f"/teams/{team}", json={"display_name": name}, headers=auth(Role.manager, subject=subject)
        )
        assert answer.status_code in (200, 201), answer.text
    return complaints


async def test_filters_and_pages_find_each_entry_once_newest_first(logged: RunningService) -> None:
    every = await entries(logged)
    assert [entry["at"] for entry in every] == sorted((entry["at"] for entry in every), reverse=True)
    assert len(every) == 4
    pages = []
    cursor = None
    while True:
        params = {"limit": "1", **({"cursor": cursor} if cursor else {})}
        page = (await logged.client.get("/audit", params=params, headers=MANAGER)).json()
        pages.extend(page["items"])
        if (cursor := page["next_cursor"]) is None:
            break
    assert pages == every
    assert [e["actor"] for e in await entries(logged, actor="=2+5")] == ["=2+5"]
    assert len(await entries(logged, subject_type="team", subject_id="billing")) == 2
    assert await entries(logged, action="team.delete") == []
    window = await entries(
        logged, since=(T0 + timedelta(hours=1)).isoformat(), until=(T0 + timedelta(hours=3)).isoformat()
    )
    # Since is inclusive, until is not: the entries of hours 2 and 1.
    assert window == every[1:3]
    assert window[0]["after"]["display_name"] == '-Delivery, "fast"\n配送'
    bad = await logged.client.get("/audit", params={"cursor": "nonsense"}, headers=MANAGER)
    assert problem(bad, 422)


async def test_the_csv_export_reads_back_as_the_same_entries_with_formulas_defused(
    logged: RunningService,
) -> None:
    every = await entries(logged)
    for answer in (
        await logged.client.get("/audit.csv", headers=MANAGER),
        await logged.client.get("/audit", headers={**MANAGER, "Accept": "text/csv"}),
    ):
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
        read_back = [entry.model_dump(mode="json") for entry in from_csv(answer.text)]
        assert read_back == list(reversed(every))
        rows = list(csv.DictReader(io.StringIO(answer.text.removeprefix("\ufeff"))))
        # A spreadsheet sees no cell that starts a formula.
        assert not [cell for row in rows for cell in row.values() if cell[:1] in ("=", "+", "-", "@")]
    assert rows[-1]["actor"] == "'=2+5"
    only = await logged.client.get("/audit.csv", params={"actor": "=2+5"}, headers=MANAGER)
    assert [entry.actor for entry in from_csv(only.text)] == ["=2+5"]
    assert problem(await logged.client.get("/audit.csv", headers=auth(Role.agent)), 403)


async def test_nothing_changes_an_entry(logged: RunningService) -> None:
    entry_id = (await entries(logged))[0]["id"]
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        for path in ("/audit", f"/audit/{entry_id}"):
            answer = await logged.client.request(method, path, headers=auth(Role.admin), json={})
            assert answer.status_code in (404, 405), (method, path, answer.status_code)
    # Nor can anything that reaches the database: a trigger refuses UPDATE and DELETE.
    for statement in (
        audit_entry.update().values(actor="someone-else"),
        audit_entry.delete(),
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            async with logged.runtime.db.unit_of_work() as session:
                await session.execute(statement)
    assert len(await entries(logged)) == 4
    assert {entry["actor"] for entry in await entries(logged)} == {"manager-1", "=2+5"}
    async with logged.runtime.db.read() as session:
        assert await session.scalar(sa.select(sa.func.count()).select_from(audit_entry)) == 4
