"""The workflow over HTTP: allowed and refused transitions, the pause, resolution, reopen, surveys,
compensation authority, escalation by hand, the policy and who may change it."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta
from typing import Any

import pytest

from services.complaints.policy import default_policy
from shared.clock import ManualClock
from shared.roles import Role
from tests.complaints.helpers import TUESDAY_10_SHANGHAI, move, open_complaint, set_tier, staff, staged
from tests.harness import RunningService, Stack, auth, problem


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(TUESDAY_10_SHANGHAI)


@pytest.fixture
async def complaints(stack: Stack, clock: ManualClock) -> RunningService:
    return await stack.start("complaints", clock=clock, run_workers=False)


async def gold_complaint(complaints: RunningService, **fields: Any) -> dict[str, Any]:
    customer = uuid.uuid4()
    await set_tier(complaints, customer, "gold")
    return await open_complaint(complaints, customer_id=customer, **fields)


def clock_of(complaint: dict[str, Any], target: str) -> dict[str, Any]:
    return next(clock for clock in complaint["clocks"] if clock["target"] == target)


async def events(complaints: RunningService, event_type: str) -> list[dict[str, Any]]:
    return [json.loads(body)["data"] for kind, body in await staged(complaints) if kind == event_type]


async def resolve(
    complaints: RunningService, complaint_id: str, *, headers: dict[str, str] | None = None, **fields: Any
) -> Any:
    body = {"summary": "Re-sent the parcel by courier.", "root_cause": "carrier_delay", **fields}
    return await complaints.client.post(
        f"/complaints/{complaint_id}/resolution", json=body, headers=headers or staff()
    )


async def test_an_illegal_transition_is_409_saying_what_is_allowed(complaints: RunningService) -> None:
    complaint = await gold_complaint(complaints)
    refused = await move(complaints, complaint["id"], "in_progress")
    assert problem(refused, 409) == "transition-not-allowed"
    assert refused.json()["allowed"] == ["acknowledged", "resolved"]
    assert "may become: acknowledged, resolved" in refused.json()["detail"]
    closed_too_early = await move(complaints, complaint["id"], "closed")
    assert closed_too_early.status_code == 409
    reopen_open = await complaints.client.post(
        f"/complaints/{complaint['id']}/reopen", json={"reason": "x"}, headers=staff()
    )
    assert reopen_open.status_code == 409 and "from new it may become" in reopen_open.json()["detail"]
    not_a_transition = await move(complaints, complaint["id"], "resolved")
    assert not_a_transition.status_code == 422 and not_a_transition.json()["errors"][0]["field"] == "to"


async def test_every_transition_is_recorded_with_who_when_and_why(
    complaints: RunningService, clock: ManualClock
) -> None:
    complaint = await gold_complaint(complaints)
    clock.advance(timedelta(minutes=20))
    assert (
        await move(complaints, complaint["id"], "acknowledged", headers=staff(Role.supervisor, "lead-2"))
    ).status_code == 200
    clock.advance(timedelta(minutes=5))
    await move(complaints, complaint["id"], "in_progress", reason="calling the carrier")
    history = (
        await complaints.client.get(f"/complaints/{complaint['id']}/transitions", headers=staff())
    ).json()
    steps = [(s["from_status"], s["to_status"], s["actor"], s["reason"], s["at"]) for s in history["items"]]
    assert steps == [
        (None, "new", "agent-1", None, "2026-11-24T02:00:00Z"),
        ("new", "acknowledged", "lead-2", None, "2026-11-24T02:20:00Z"),
        ("acknowledged", "in_progress", "agent-1", "calling the carrier", "2026-11-24T02:25:00Z"),
    ]
    changed = await events(complaints, "csm.complaint.status_changed.v1")
    assert [(e["previous_status"], e["status"], e["actor"]) for e in changed] == [
        ("new", "acknowledged", "lead-2"),
        ("acknowledged", "in_progress", "agent-1"),
    ]
    current = (await complaints.client.get(f"/complaints/{complaint['id']}", headers=staff())).json()
    assert current["first_owner"] == "agent-1"
    # The acknowledgement was the first response, 20 minutes in: the promise is kept.
    assert clock_of(current, "first_response")["met_at"] == "2026-11-24T02:20:00Z"


async def test_waiting_on_the_customer_stops_the_clock(
    complaints: RunningService, clock: ManualClock
) -> None:
    complaint = await gold_complaint(complaints)
    await move(complaints, complaint["id"], "acknowledged")
    await move(complaints, complaint["id"], "in_progress")
    assert clock_of(complaint, "resolution")["due_at"] == "2026-11-26T02:00:00Z"
    clock.advance(timedelta(hours=1))
    waiting = (
        await move(complaints, complaint["id"], "waiting_on_customer", reason="asked for photos")
    ).json()
    assert clock_of(waiting, "resolution")["due_at"] is None  # no due time while paused
    clock.advance(timedelta(hours=5))
    resumed = (await move(complaints, complaint["id"], "in_progress", reason="photos arrived")).json()
    assert clock_of(resumed, "resolution")["due_at"] == "2026-11-26T07:00:00Z"  # five hours later


async def test_assignment_and_escalation_leave_the_first_owner(complaints: RunningService) -> None:
    complaint = await gold_complaint(complaints)
    assigned = await complaints.client.post(
        f"/complaints/{complaint['id']}/assignment", json={"assignee": "agent-9"}, headers=staff()
    )
    assert assigned.json()["assignee"] == "agent-9" and assigned.json()["first_owner"] == "agent-1"
    escalated = await complaints.client.post(
        f"/complaints/{complaint['id']}/escalations",
        json={"reason": "customer disputes the refund"},
        headers=staff(),
    )
    assert escalated.status_code == 201
    assert (escalated.json()["level_name"], escalated.json()["must_act"]) == ("supervisor", "supervisor")
    await complaints.client.post(
        f"/complaints/{complaint['id']}/escalations", json={"reason": "still"}, headers=staff()
    )
    # Not a key account: the manager is the top of the ladder.
    top = await complaints.client.post(
        f"/complaints/{complaint['id']}/escalations", json={"reason": "more"}, headers=staff()
    )
    assert problem(top, 409) == "at-top-of-ladder" and "top of the escalation ladder" in top.json()["detail"]
    ladder = (
        await complaints.client.get(f"/complaints/{complaint['id']}/escalations", headers=staff())
    ).json()
    assert [level["level_name"] for level in ladder["items"]] == ["supervisor", "manager"]
    [first, second] = await events(complaints, "csm.complaint.escalated.v1")
    assert (first["level"], first["first_owner"], second["must_act"]) == (1, "agent-1", "manager")
    mine = (
        await complaints.client.get("/complaints", params={"first_owner": "agent-1"}, headers=staff())
    ).json()
    assert [item["id"] for item in mine["items"]] == [complaint["id"]]


async def test_first_contact_resolution_within_the_promise(
    complaints: RunningService, clock: ManualClock
) -> None:
    complaint = await gold_complaint(complaints)
    clock.advance(timedelta(minutes=10))
    unknown_cause = await resolve(complaints, complaint["id"], root_cause="gremlins")
    assert unknown_cause.status_code == 422 and unknown_cause.json()["errors"][0]["field"] == "root_cause"
    resolved = await resolve(complaints, complaint["id"])
    assert resolved.status_code == 200, resolved.text
    body = resolved.json()
    assert (body["status"], body["first_contact_resolution"], body["within_sla"]) == ("resolved", True, True)
    [event] = await events(complaints, "csm.complaint.resolved.v1")
    assert event["first_contact_resolution"] is True and event["within_sla"] is True
    assert (
        event["tier"],
        event["first_owner"],
        event["root_cause"],
        event["compensation"],
        event["currency"],
    ) == (
        "gold",
        "agent-1",
        "carrier_delay",
        "0.00",
        "CNY",
    )


async def test_a_resolution_after_the_due_time_is_outside_the_sla(
    complaints: RunningService, clock: ManualClock
) -> None:
    complaint = await gold_complaint(complaints)
    await move(complaints, complaint["id"], "acknowledged")
    await move(complaints, complaint["id"], "in_progress")
    clock.advance(timedelta(hours=49))
    await hand_to(complaints, complaint["id"], "agent-2")
    body = (await resolve(complaints, complaint["id"], headers=staff(subject="agent-2"))).json()
    assert body["within_sla"] is False and body["first_contact_resolution"] is False


async def test_reopen_starts_a_new_cycle_with_the_promises_owed_again(
    complaints: RunningService, clock: ManualClock
) -> None:
    complaint = await gold_complaint(complaints)
    await resolve(complaints, complaint["id"])
    clock.advance(timedelta(days=2))
    reopened = await complaints.client.post(
        f"/complaints/{complaint['id']}/reopen", json={"reason": "the parcel was damaged"}, headers=staff()
    )
    body = reopened.json()
    assert (body["status"], body["cycle"], body["reopen_count"], body["resolved_at"]) == (
        "reopened",
        2,
        1,
        None,
    )
    assert clock_of(body, "first_response")["due_at"] == "2026-11-26T04:00:00Z"  # 2 hours from the reopen
    [event] = await events(complaints, "csm.complaint.reopened.v1")
    assert event["reason"] == "the parcel was damaged"
    assert (await move(complaints, complaint["id"], "acknowledged")).status_code == 200


async def test_a_reopen_may_resume_the_resolution_promise_but_a_response_is_owed_afresh(
    complaints: RunningService, clock: ManualClock
) -> None:
    policy = default_policy().model_dump(mode="json") | {"reopen": "resume"}
    assert (
        await complaints.client.put("/complaint-policy", json=policy, headers=staff(Role.manager))
    ).is_success
    complaint = await gold_complaint(complaints)
    clock.advance(timedelta(hours=10))
    await resolve(complaints, complaint["id"])
    clock.advance(timedelta(days=1))
    body = (
        await complaints.client.post(
            f"/complaints/{complaint['id']}/reopen", json={"reason": "it broke again"}, headers=staff()
        )
    ).json()
    # 10 of gold's 48 hours were used before the resolution; the day spent resolved does not count.
    assert clock_of(body, "resolution")["due_at"] == "2026-11-27T02:00:00Z"
    assert clock_of(body, "first_response")["due_at"] == "2026-11-25T14:00:00Z"  # 2 hours from the reopen


async def test_a_poor_survey_reopens_the_complaint_for_a_follow_up(complaints: RunningService) -> None:
    complaint = await gold_complaint(complaints)
    early = await complaints.client.post(
        f"/complaints/{complaint['id']}/survey", json={"csat": 5}, headers=auth(Role.service, "survey-app")
    )
    assert problem(early, 409) == "nothing-to-rate"
    await resolve(complaints, complaint["id"])
    out_of_range = await complaints.client.post(
        f"/complaints/{complaint['id']}/survey", json={"csat": 6}, headers=staff()
    )
    assert out_of_range.status_code == 422 and out_of_range.json()["errors"][0]["field"] == "csat"
    answered = await complaints.client.post(
        f"/complaints/{complaint['id']}/survey",
        json={"csat": 2, "nps": 3, "comment": "Slow and rude"},
        headers=auth(Role.service, "survey-app"),
    )
    assert answered.status_code == 201 and answered.json()["poor"] is True
    current = (await complaints.client.get(f"/complaints/{complaint['id']}", headers=staff())).json()
    assert current["status"] == "reopened" and current["cycle"] == 2
    [survey] = await events(complaints, "csm.complaint.survey_answered.v1")
    assert (survey["csat"], survey["nps"], survey["poor"]) == (2, 3, True)
    [reopened] = await events(complaints, "csm.complaint.reopened.v1")
    assert "poor survey" in reopened["reason"]
    # A good answer to the next resolution leaves it resolved; each cycle is rated once.
    await resolve(complaints, complaint["id"])
    good = await complaints.client.post(
        f"/complaints/{complaint['id']}/survey", json={"csat": 5}, headers=staff()
    )
    assert good.status_code == 201 and good.json()["poor"] is False
    again = await complaints.client.post(
        f"/complaints/{complaint['id']}/survey", json={"csat": 1}, headers=staff()
    )
    assert problem(again, 409) == "already-rated"
    after = (await complaints.client.get(f"/complaints/{complaint['id']}", headers=staff())).json()
    assert after["status"] == "resolved"
    surveys = (await complaints.client.get(f"/complaints/{complaint['id']}/surveys", headers=staff())).json()
    assert [s["csat"] for s in surveys["items"]] == [2, 5]


async def offer(
    complaints: RunningService,
    complaint_id: str,
    amount: str,
    *,
    role: Role = Role.agent,
    currency: str = "CNY",
) -> Any:
    return await complaints.client.post(
        f"/complaints/{complaint_id}/compensations",
        json={"amount": amount, "currency": currency, "reason": "goodwill"},
        headers=staff(role, f"{role.value}-1"),
    )


async def hand_to(complaints: RunningService, complaint_id: str, assignee: str) -> None:
    handed = await complaints.client.post(
        f"/complaints/{complaint_id}/assignment",
        json={"assignee": assignee, "reason": "on site tomorrow"},
        headers=staff(),
    )
    assert handed.status_code == 200, handed.text


async def decide(complaints: RunningService, compensation_id: str, role: Role, approve: bool = True) -> Any:
    return await complaints.client.post(
        f"/compensations/{compensation_id}/decision",
        json={"approve": approve},
        headers=staff(role, f"{role.value}-1"),
    )


async def test_compensation_within_the_agents_limit_is_granted_and_above_it_waits(
    complaints: RunningService,
) -> None:
    complaint = await gold_complaint(complaints)
    within = await offer(complaints, complaint["id"], "150.00")
    assert within.status_code == 201 and within.json()["status"] == "granted"
    above = await offer(complaints, complaint["id"], "500.00")
    assert above.status_code == 201
    assert (above.json()["status"], above.json()["requires_role"]) == ("pending", "supervisor")
    wrong_currency = await offer(complaints, complaint["id"], "10.00", currency="USD")
    assert wrong_currency.status_code == 422 and wrong_currency.json()["errors"][0]["field"] == "currency"
    # Pending compensation must be decided before the complaint can be resolved.
    assert problem(await resolve(complaints, complaint["id"]), 409) == "compensation-pending"
    queue = (
        await complaints.client.get("/compensations", params={"status": "pending"}, headers=staff())
    ).json()
    assert [item["id"] for item in queue["items"]] == [above.json()["id"]]
    theirs = await complaints.client.get(
        "/compensations", params={"status": "pending", "first_owner": "someone-else"}, headers=staff()
    )
    assert theirs.json()["items"] == []
    assert problem(await decide(complaints, above.json()["id"], Role.agent), 403) == "beyond-authority"
    approved = await decide(complaints, above.json()["id"], Role.supervisor)
    assert approved.status_code == 200 and approved.json()["status"] == "granted"
    assert (
        problem(await decide(complaints, above.json()["id"], Role.supervisor), 409) == "compensation-decided"
    )
    large = await offer(complaints, complaint["id"], "5000.00", role=Role.supervisor)
    assert large.json()["requires_role"] == "manager"
    assert (await decide(complaints, large.json()["id"], Role.supervisor, approve=False)).status_code == 403
    assert (await decide(complaints, large.json()["id"], Role.manager, approve=False)).json()[
        "status"
    ] == "rejected"
    resolved = (await resolve(complaints, complaint["id"])).json()
    assert resolved["compensation"] == "650.00"
    [event] = await events(complaints, "csm.complaint.resolved.v1")
    assert event["compensation"] == "650.00"


async def test_authority_adds_up_one_persons_offers_on_a_complaint_cannot_split_a_large_one(
    complaints: RunningService,
) -> None:
    complaint = await gold_complaint(complaints)
    # Five offers of 199.99 at once by an agent whose limit is 200: the first is granted, the rest wait.
    offers = await asyncio.gather(*(offer(complaints, complaint["id"], "199.99") for _ in range(5)))
    assert all(o.status_code == 201 for o in offers), [o.text for o in offers]
    assert sorted(o.json()["status"] for o in offers) == ["granted"] + ["pending"] * 4
    assert {o.json()["requires_role"] for o in offers if o.json()["status"] == "pending"} == {"supervisor"}
    # Another agent, once assigned, has a limit of their own on the same complaint.
    await hand_to(complaints, complaint["id"], "agent-2")
    colleague = await complaints.client.post(
        f"/complaints/{complaint['id']}/compensations",
        json={"amount": "150.00", "currency": "CNY", "reason": "goodwill"},
        headers=staff(Role.agent, "agent-2"),
    )
    assert colleague.json()["status"] == "granted"
    # An approver's approvals count against their limit (1,000 for a supervisor).
    waiting = [o.json()["id"] for o in offers if o.json()["status"] == "pending"]
    for compensation_id in waiting:
        assert (await decide(complaints, compensation_id, Role.supervisor)).json()["status"] == "granted"
    beyond = await offer(complaints, complaint["id"], "250.00", role=Role.supervisor)
    assert beyond.json()["status"] == "pending", "799.96 approved + 250.00 is over the supervisor's 1,000"
    assert problem(await decide(complaints, beyond.json()["id"], Role.supervisor), 403) == "beyond-authority"
    assert (await decide(complaints, beyond.json()["id"], Role.manager)).json()["status"] == "granted"


async def test_only_managers_change_the_policy_and_new_complaints_follow_it(
    complaints: RunningService,
) -> None:
    policy = default_policy().model_dump(mode="json")
    for rule in policy["targets"]:
        if rule["tier"] == "gold" and rule["severity"] is None:
            rule["first_response"] = "PT1H"
    policy["compensation_limits"]["agent"] = "300.00"
    for role in (Role.agent, Role.supervisor):
        refused = await complaints.client.put("/complaint-policy", json=policy, headers=staff(role))
        assert refused.status_code == 403
    stored = await complaints.client.put(
        "/complaint-policy", json=policy, headers=staff(Role.manager, "boss")
    )
    assert stored.status_code == 200 and stored.json()["version"] == 1
    current = (await complaints.client.get("/complaint-policy", headers=staff())).json()
    assert (current["version"], current["created_by"]) == (1, "boss")
    complaint = await gold_complaint(complaints)
    assert clock_of(complaint, "first_response")["due_at"] == "2026-11-24T03:00:00Z"
    assert (await offer(complaints, complaint["id"], "250.00")).json()["status"] == "granted"


BAD_POLICIES: list[tuple[Any, str]] = [
    (lambda p: p["targets"][0].update(calendar="lunar"), "targets"),
    (lambda p: p.update(warning_share=1.5), "warning_share"),
    (
        lambda p: p["calendars"]["business_hours"].update(time_zone="Mars/Olympus"),
        "calendars.business_hours.time_zone",
    ),
    (
        lambda p: p["calendars"]["business_hours"]["hours"].update(mon=["18:00-09:00"]),
        "calendars.business_hours.hours.mon.0",
    ),
    (lambda p: p["compensation_limits"].update(supervisor="100.00"), "compensation_limits"),
    (lambda p: p.update(targets=[t for t in p["targets"] if t["tier"] or t["severity"]]), "targets"),
    (lambda p: p["escalation"].append(p["escalation"][1]), "escalation"),
    (lambda p: p.update(surprise=True), "surprise"),
]


async def test_a_bad_policy_is_422_naming_the_field(complaints: RunningService) -> None:
    for change, field in BAD_POLICIES:
        policy = default_policy().model_dump(mode="json")
        change(policy)
        response = await complaints.client.put("/complaint-policy", json=policy, headers=staff(Role.manager))
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"].startswith(field), (field, response.json()["errors"])
    assert (await complaints.client.get("/complaint-policy", headers=staff())).json()["version"] == 0


async def test_a_higher_severity_retargets_at_once(complaints: RunningService) -> None:
    complaint = await gold_complaint(complaints)
    patched = await complaints.client.patch(
        f"/complaints/{complaint['id']}", json={"severity": "critical"}, headers=staff()
    )
    # Gold, critical: 1 hour.
    assert clock_of(patched.json(), "first_response")["due_at"] == "2026-11-24T03:00:00Z"
    [announced] = await events(complaints, "csm.complaint.retargeted.v1")
    assert (announced["severity"], announced["first_response_due_at"]) == ("critical", "2026-11-24T03:00:00Z")
    empty = await complaints.client.patch(f"/complaints/{complaint['id']}", json={}, headers=staff())
    assert empty.status_code == 422
    await resolve(complaints, complaint["id"])
    finished = await complaints.client.patch(
        f"/complaints/{complaint['id']}", json={"severity": "low"}, headers=staff()
    )
    assert (
        problem(finished, 409) == "complaint-not-open" and finished.json()["complaint_status"] == "resolved"
    )


async def test_the_on_site_promise_is_kept_by_recording_the_visit(
    complaints: RunningService, clock: ManualClock
) -> None:
    complaint = await gold_complaint(complaints)
    no_visit = await complaints.client.post(f"/complaints/{complaint['id']}/visit", headers=staff())
    assert problem(no_visit, 409) == "no-visit-required"
    await complaints.client.patch(
        f"/complaints/{complaint['id']}", json={"visit_required": True}, headers=staff()
    )
    clock.advance(timedelta(hours=20))
    visited = (await complaints.client.post(f"/complaints/{complaint['id']}/visit", headers=staff())).json()
    assert clock_of(visited, "on_site")["met_at"] == "2026-11-24T22:00:00Z"
    future = await complaints.client.post(
        f"/complaints/{complaint['id']}/visit", json={"visited_at": "2030-01-01T00:00:00Z"}, headers=staff()
    )
    assert future.status_code == 422 and future.json()["errors"][0]["field"] == "visited_at"


async def test_a_peer_cannot_approve_what_went_beyond_a_colleagues_authority(
    complaints: RunningService,
) -> None:
    complaint = await gold_complaint(complaints)
    await offer(complaints, complaint["id"], "199.99")
    pending = (await offer(complaints, complaint["id"], "100.00")).json()
    assert (pending["status"], pending["requires_role"]) == ("pending", "supervisor")
    by_peer = await complaints.client.post(
        f"/compensations/{pending['id']}/decision",
        json={"approve": True},
        headers=staff(Role.agent, "agent-2"),
    )
    assert problem(by_peer, 403) == "beyond-authority"


async def test_an_agent_acts_only_on_complaints_they_own_or_are_assigned(complaints: RunningService) -> None:
    complaint = await gold_complaint(complaints)  # agent-1's
    stranger = staff(subject="agent-9")
    attempts = {
        "compensate": ("post", "compensations", {"amount": "10.00", "currency": "CNY", "reason": "x"}),
        "reassign to himself": ("post", "assignment", {"assignee": "agent-9", "reason": "mine now"}),
        "acknowledge": ("post", "transitions", {"to": "acknowledged"}),
        "escalate": ("post", "escalations", {"reason": "pushy customer"}),
        "raise the severity": ("patch", "", {"severity": "critical"}),
    }
    for what, (method, path, body) in attempts.items():
        url = f"/complaints/{complaint['id']}" + (f"/{path}" if path else "")
        refused = await getattr(complaints.client, method)(url, json=body, headers=stranger)
        assert problem(refused, 403) == "not-your-complaint", what
    compensations = await complaints.client.get(
        f"/complaints/{complaint['id']}/compensations", headers=staff()
    )
    assert compensations.json()["items"] == [], "nothing the stranger tried took effect"
    # Assigned, the agent may act; a supervisor may act on any complaint.
    await hand_to(complaints, complaint["id"], "agent-9")
    assert (await offer_as(complaints, complaint["id"], stranger)).json()["status"] == "granted"
    assert (await offer_as(complaints, complaint["id"], staff(Role.supervisor, "lead-1"))).status_code == 201


async def offer_as(complaints: RunningService, complaint_id: str, headers: dict[str, str]) -> Any:
    return await complaints.client.post(
        f"/complaints/{complaint_id}/compensations",
        json={"amount": "10.00", "currency": "CNY", "reason": "goodwill"},
        headers=headers,
    )
