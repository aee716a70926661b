"""Routing over HTTP on hand-built teams: rules to teams, then the least-loaded person on duty with
room, with the skill and the language; the fallback when nobody is; a dry run that changes nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from shared.clock import ManualClock
from shared.roles import Role
from tests.complaints.helpers import TUESDAY_10_SHANGHAI, open_complaint, staff
from tests.harness import RunningService, Stack, problem

MANAGER = staff(Role.manager, "manager-1")
SUPERVISOR = staff(Role.supervisor, "supervisor-1")
WEEKDAYS_9_TO_6 = {day: ["09:00-18:00"] for day in ("mon", "tue", "wed", "thu", "fri")}
POLICY: dict[str, Any] = {
    "rules": [
        {"name": "billing", "category": "billing", "team": "billing", "skill": "refunds"},
        {"name": "english", "language": "en", "team": "billing"},
    ],
    "fallback_team": "front-desk",
}


async def hand_built_teams(service: RunningService) -> None:
    for team in ("billing", "front-desk"):
        await service.client.put(f"/teams/{team}", json={"display_name": team}, headers=MANAGER)
    people: dict[str, dict[str, Any]] = {
        # Shanghai, speaks Chinese, does refunds, takes one complaint at a time.
        "ann": {
            "teams": ["billing"],
            "working_hours": WEEKDAYS_9_TO_6,
            "languages": ["zh"],
            "skills": ["refunds"],
            "capacity": 1,
        },
        # Shanghai, speaks Chinese, no refunds.
        "bing": {
            "teams": ["billing"],
            "working_hours": WEEKDAYS_9_TO_6,
            "languages": ["zh-CN"],
            "capacity": 5,
        },
        # London, speaks English, does refunds.
        "emma": {
            "teams": ["billing"],
            "time_zone": "Europe/London",
            "working_hours": WEEKDAYS_9_TO_6,
            "languages": ["en"],
            "skills": ["refunds"],
            "capacity": 5,
        },
        # The front desk, any hours.
        "fay": {"teams": ["front-desk"], "capacity": 10},
    }
    for subject, fields in people.items():
        body = {"display_name": subject.title(), "role": "agent", **fields}
        response = await service.client.put(f"/staff/{subject}", json=body, headers=MANAGER)
        assert response.status_code == 201, response.text


async def test_managers_keep_the_routing_policy_naming_only_teams_that_exist(stack: Stack) -> None:
    complaints = await stack.start("complaints", run_workers=False)
    shipped = (await complaints.client.get("/routing-policy", headers=staff())).json()
    assert shipped == {
        "version": 0,
        "created_by": None,
        "created_at": None,
        "policy": {"rules": [], "fallback_team": None},
    }
    assert problem(await complaints.client.put("/routing-policy", json=POLICY, headers=SUPERVISOR), 403)
    unknown = await complaints.client.put("/routing-policy", json=POLICY, headers=MANAGER)
    assert problem(unknown, 422) == "unknown-team" and unknown.json()["errors"][0]["field"] == "rules.0.team"
    await hand_built_teams(complaints)
    stored = await complaints.client.put("/routing-policy", json=POLICY, headers=MANAGER)
    assert stored.status_code == 200 and stored.json()["version"] == 1
    current = (await complaints.client.get("/routing-policy", headers=staff())).json()
    assert (current["version"], current["created_by"], current["policy"]["fallback_team"]) == (
        1,
        "manager-1",
        "front-desk",
    )
    repeated = {"rules": [{"name": "a", "team": "billing"}, {"name": "a", "team": "billing"}]}
    assert problem(await complaints.client.put("/routing-policy", json=repeated, headers=MANAGER), 422)


async def test_new_complaints_go_to_the_least_loaded_fitting_person_on_duty_or_fall_back(
    stack: Stack,
) -> None:
    # Tuesday 10:00 in Shanghai, 02:00 in London.
    clock = ManualClock(TUESDAY_10_SHANGHAI)
    complaints = await stack.start("complaints", clock=clock, run_workers=False)
    await hand_built_teams(complaints)
    # Before any policy: no routing, as before.
    assert (await open_complaint(complaints, category="billing", language="zh-CN"))["assignee"] is None
    assert (await complaints.client.put("/routing-policy", json=POLICY, headers=MANAGER)).status_code == 200

    async def routed(**fields: Any) -> str | None:
        return (await open_complaint(complaints, **fields))["assignee"]  # type: ignore[no-any-return]

    # Refunds in Chinese: ann has the skill and the language and is on duty; bing lacks the skill,
    # emma the language and her hours.
    assert await routed(category="billing", language="zh-CN") == "ann"
    # Ann is at her capacity of one: nobody else in billing fits, so the front desk takes it.
    assert await routed(category="billing", language="zh-CN") == "fay"
    # In English, at 02:00 in London: emma is off duty.
    assert await routed(category="delivery", language="en") == "fay"
    # No rule for a delivery complaint in Chinese: it stays with whoever received it.
    assert await routed(category="delivery", language="zh") is None
    # 09:00 in London, 17:00 in Shanghai: emma's day begins.
    clock.advance(timedelta(hours=7))
    assert await routed(category="delivery", language="en-GB") == "emma"
    # Emma does refunds and speaks English; a Chinese refund is not hers even so: the fallback takes it.
    assert await routed(category="billing", language="en") == "emma"
    assert await routed(category="billing", language="zh-CN") == "fay"

    # Without a fallback team, a complaint nobody in its team can take stays unassigned.
    no_fallback = {**POLICY, "fallback_team": None, "rules": POLICY["rules"][:1]}
    assert (await complaints.client.put("/routing-policy", json=no_fallback, headers=MANAGER)).json()[
        "version"
    ] == 2
    clock.advance(timedelta(hours=10))  # 03:00 on Wednesday in Shanghai, 19:00 on Tuesday in London
    assert await routed(category="billing", language="zh-CN") is None


async def test_a_dry_run_says_where_a_complaint_would_go_and_changes_nothing(stack: Stack) -> None:
    complaints = await stack.start("complaints", clock=ManualClock(TUESDAY_10_SHANGHAI), run_workers=False)
    await hand_built_teams(complaints)
    trial = {"category": "billing", "language": "zh-CN", "channel": "phone"}
    shipped = await complaints.client.post("/routing-policy/dry-run", json=trial, headers=SUPERVISOR)
    assert shipped.json() == {"version": 0, "rule": None, "team": None, "assignee": None, "fell_back": False}
    draft = await complaints.client.post(
        "/routing-policy/dry-run", json={**trial, "policy": POLICY}, headers=SUPERVISOR
    )
    assert draft.json() == {
        "version": None,
        "rule": "billing",
        "team": "billing",
        "assignee": "ann",
        "fell_back": False,
    }
    # London's morning, as a draft tried for a later time.
    later = {
        "category": "delivery",
        "language": "en",
        "channel": "web",
        "at": "2026-11-24T09:30:00Z",
        "policy": POLICY,
    }
    assert (await complaints.client.post("/routing-policy/dry-run", json=later, headers=SUPERVISOR)).json()[
        "assignee"
    ] == "emma"
    tonight = {**later, "at": "2026-11-24T20:00:00Z"}
    fallback = (
        await complaints.client.post("/routing-policy/dry-run", json=tonight, headers=SUPERVISOR)
    ).json()
    assert (fallback["team"], fallback["assignee"], fallback["fell_back"]) == ("front-desk", "fay", True)
    # Nothing was stored or assigned.
    assert (await complaints.client.get("/routing-policy", headers=staff())).json()["version"] == 0
    assert (await complaints.client.get("/complaints", headers=staff())).json()["items"] == []
    assert problem(await complaints.client.post("/routing-policy/dry-run", json=trial, headers=staff()), 403)
    unknown = await complaints.client.post(
        "/routing-policy/dry-run", json={**trial, "tier": "diamond"}, headers=SUPERVISOR
    )
    assert problem(unknown, 422) and unknown.json()["errors"][0]["field"] == "tier"
