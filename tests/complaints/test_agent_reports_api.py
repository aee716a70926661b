"""Reports per agent and per team over HTTP: the figures equal an independent computation over the
same complaints, the CSV carries the same numbers, and the period and the roles are respected."""

from __future__ import annotations

import csv
import io
import math
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from shared.clock import ManualClock
from shared.roles import Role
from tests.complaints.helpers import TUESDAY_10_SHANGHAI, move, open_complaint, set_tier, staff
from tests.harness import RunningService, Stack, auth, problem

MANAGER = staff(Role.manager, "manager-1")
SUPERVISOR = staff(Role.supervisor, "supervisor-1")
# Gold promises (around the clock): a first response within 2 hours, a resolution within 48.
FIRST_RESPONSE_HOURS, RESOLUTION_HOURS = 2, 48


@dataclass
class Expected:
    """What a test knows of one complaint it handled: the facts the figures are computed from."""

    holder: str
    first_response: float | None = None
    resolution: float | None = None
    first_contact: bool | None = None
    csat: list[int] = field(default_factory=list)
    open: bool = True


def nearest_rank(values: list[float], share: float) -> float | None:
    ordered = sorted(values)
    return ordered[math.ceil(share * len(ordered)) - 1] if ordered else None


def independent(complaints: list[Expected], backlog: int) -> dict[str, Any]:
    """The figures, computed here from what the test did rather than from what the service stored."""
    responses = [c.first_response for c in complaints if c.first_response is not None]
    resolutions = [c.resolution for c in complaints if c.resolution is not None]
    kept = sum(1 for h in responses if h <= FIRST_RESPONSE_HOURS) + sum(
        1 for h in resolutions if h <= RESOLUTION_HOURS
    )
    decided = len(responses) + len(resolutions)
    judged = [c.first_contact for c in complaints if c.first_contact is not None]
    answers = [a for c in complaints for a in c.csat]
    return {
        "complaints": len(complaints),
        "sla_kept": kept,
        "sla_decided": decided,
        "sla_attainment": round(kept / decided, 4) if decided else None,
        "first_response_count": len(responses),
        "first_response_median_hours": nearest_rank(responses, 0.5),
        "first_response_p90_hours": nearest_rank(responses, 0.9),
        "resolution_count": len(resolutions),
        "resolution_median_hours": nearest_rank(resolutions, 0.5),
        "resolution_p90_hours": nearest_rank(resolutions, 0.9),
        "first_contact_resolution_rate": round(sum(judged) / len(judged), 4) if judged else None,
        "csat_answers": len(answers),
        "csat_mean": round(sum(answers) / len(answers), 3) if answers else None,
        "backlog": backlog,
    }


async def setup_directory(service: RunningService) -> None:
    for team in ("billing", "delivery"):
        await service.client.put(f"/teams/{team}", json={"display_name": team.title()}, headers=MANAGER)
    for subject, name, teams in (
        ("ann", "安娜", ["billing"]),
        ("bob", "Bob", ["billing"]),
        ("cai", "Cai", ["billing", "delivery"]),
    ):
        body = {"display_name": name, "role": "agent", "teams": teams}
        response = await service.client.put(f"/staff/{subject}", json=body, headers=MANAGER)
        assert response.status_code == 201, response.text


async def test_figures_per_agent_and_team_equal_an_independent_computation(stack: Stack) -> None:
    clock = ManualClock(TUESDAY_10_SHANGHAI)
    complaints = await stack.start("complaints", clock=clock, run_workers=False)
    await setup_directory(complaints)
    gold = uuid.uuid4()
    await set_tier(complaints, gold, "gold")

    async def take(subject: str) -> str:
        complaint = await open_complaint(complaints, customer_id=gold, headers=staff(subject=subject))
        return str(complaint["id"])

    async def resolve(complaint_id: str, subject: str, first_contact: bool) -> None:
        response = await complaints.client.post(
            f"/complaints/{complaint_id}/resolution",
            json={
                "summary": "done",
                "root_cause": "carrier_delay",
                "first_contact_resolution": first_contact,
            },
            headers=staff(subject=subject),
        )
        assert response.status_code == 200, response.text

    async def rate(complaint_id: str, csat: int) -> None:
        response = await complaints.client.post(
            f"/complaints/{complaint_id}/survey", json={"csat": csat}, headers=staff()
        )
        assert response.status_code == 201, response.text

    # Opened before the period: left out of the figures, but still in ann's backlog.
    await take("ann")
    clock.advance(timedelta(days=2))
    since = clock.now() - timedelta(minutes=1)
    a1, a2, a3, b1, d1 = [await take(s) for s in ("ann", "ann", "ann", "bob", "dan")]
    assigned = await complaints.client.post(
        f"/complaints/{b1}/assignment", json={"assignee": "cai"}, headers=SUPERVISOR
    )
    assert assigned.json()["assignee"] == "cai"
    clock.advance(timedelta(hours=1))
    await resolve(a1, "ann", True)
    clock.advance(timedelta(hours=1))
    await move(complaints, a2, "acknowledged", headers=staff(subject="ann"))
    clock.advance(timedelta(hours=2))
    await move(complaints, a3, "acknowledged", headers=staff(subject="ann"))
    await move(complaints, b1, "acknowledged", headers=staff(subject="cai"))
    clock.advance(timedelta(hours=6))
    await move(complaints, a2, "in_progress", headers=staff(subject="ann"))
    await resolve(a2, "ann", False)
    await resolve(b1, "cai", False)
    await rate(a1, 4)
    await rate(a2, 3)
    await rate(b1, 5)
    expected = {
        "ann": (
            [
                Expected("ann", first_response=1, resolution=1, first_contact=True, csat=[4], open=False),
                Expected("ann", first_response=2, resolution=10, first_contact=False, csat=[3], open=False),
                Expected("ann", first_response=4),
            ],
            2,
        ),
        "bob": ([], 0),
        "cai": (
            [Expected("cai", first_response=4, resolution=10, first_contact=False, csat=[5], open=False)],
            0,
        ),
        "dan": ([Expected("dan")], 1),
    }
    del d1

    response = await complaints.client.get(
        "/complaints-reports/agents", params={"since": since.isoformat()}, headers=SUPERVISOR
    )
    assert response.status_code == 200, response.text
    rows = {row["agent"]: row for row in response.json()["agents"]}
    assert set(rows) == set(expected)
    for subject, (held, backlog) in expected.items():
        figures = {key: value for key, value in rows[subject].items() if key not in ("agent", "name")}
        assert figures == independent(held, backlog), subject
    assert (rows["ann"]["name"], rows["dan"]["name"]) == ("安娜", None)
    # Spot checks of the independent computation itself: three first responses of 1, 2 and 4 hours.
    assert (rows["ann"]["first_response_median_hours"], rows["ann"]["first_response_p90_hours"]) == (2, 4)
    assert rows["ann"]["sla_attainment"] == 0.8

    teams = (
        await complaints.client.get(
            "/complaints-reports/teams", params={"since": since.isoformat()}, headers=SUPERVISOR
        )
    ).json()["teams"]
    by_team = {row["team"]: row for row in teams}
    billing = {k: v for k, v in by_team["billing"].items() if k not in ("team", "name", "members")}
    assert billing == independent(expected["ann"][0] + expected["cai"][0], 2)
    assert (by_team["billing"]["members"], by_team["delivery"]["members"]) == (3, 1)
    delivery = {k: v for k, v in by_team["delivery"].items() if k not in ("team", "name", "members")}
    assert delivery == independent(expected["cai"][0], 0)

    exported = await complaints.client.get(
        "/complaints-reports/agents.csv", params={"since": since.isoformat()}, headers=SUPERVISOR
    )
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    assert exported.content.startswith("\ufeff".encode())
    sheet = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert [line["agent"] for line in sheet] == sorted(expected)
    for line in sheet:
        row = rows[line["agent"]]
        for column, cell in line.items():
            value = row[column]
            if value is None:
                assert cell == "", (line["agent"], column)
            elif isinstance(value, str):
                assert cell == value
            else:
                assert float(cell) == value, (line["agent"], column)
    team_sheet = await complaints.client.get("/complaints-reports/teams.csv", headers=SUPERVISOR)
    assert team_sheet.text.lstrip("\ufeff").splitlines()[0].startswith("team,name,members,complaints,")


async def test_the_period_filters_and_only_supervisors_and_above_read_the_reports(stack: Stack) -> None:
    clock = ManualClock(TUESDAY_10_SHANGHAI)
    complaints = await stack.start("complaints", clock=clock, run_workers=False)
    await open_complaint(complaints, headers=staff(subject="ann"))
    clock.advance(timedelta(days=3))
    await open_complaint(complaints, headers=staff(subject="ann"))
    await open_complaint(complaints, headers=staff(subject="ann"))

    async def ann(**params: str) -> dict[str, Any]:
        response = await complaints.client.get("/complaints-reports/agents", params=params, headers=MANAGER)
        [row] = response.json()["agents"]
        return row  # type: ignore[no-any-return]

    assert (await ann())["complaints"] == 3
    first_day = {
        "since": TUESDAY_10_SHANGHAI.isoformat(),
        "until": (TUESDAY_10_SHANGHAI + timedelta(days=1)).isoformat(),
    }
    # One complaint opened in the period; the backlog is what ann holds open now.
    row = await ann(**first_day)
    assert (row["complaints"], row["backlog"]) == (1, 3)
    for path in ("agents", "agents.csv", "teams", "teams.csv"):
        refused = await complaints.client.get(f"/complaints-reports/{path}", headers=staff(subject="ann"))
        assert problem(refused, 403), path
    backwards = await complaints.client.get(
        "/complaints-reports/agents",
        params={"since": clock.now().isoformat(), "until": TUESDAY_10_SHANGHAI.isoformat()},
        headers=MANAGER,
    )
    assert problem(backwards, 422) and backwards.json()["errors"][0]["field"] == "since"


async def test_a_name_a_spreadsheet_would_run_as_a_formula_is_quoted_in_the_csv(stack: Stack) -> None:
    complaints = await stack.start("complaints", run_workers=False)
    formula = '=HYPERLINK("http://example.invalid","click")'
    await open_complaint(complaints, headers=auth(Role.service, "shop"), received_by=formula)
    rows = (await complaints.client.get("/complaints-reports/agents", headers=SUPERVISOR)).json()["agents"]
    assert [row["agent"] for row in rows] == [formula]
    exported = await complaints.client.get("/complaints-reports/agents.csv", headers=SUPERVISOR)
    [line] = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert line["agent"] == "'" + formula and line["complaints"] == "1"
