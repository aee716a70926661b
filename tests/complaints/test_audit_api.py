"""The complaints service's audit log: policies, compensations and approvals, the staff directory and
teams, canned replies — each with actor, time, before and after; readable by managers and admins only."""

from __future__ import annotations

import uuid

import pytest

from services.complaints.policy import default_policy
from shared.clock import ManualClock
from shared.roles import Role
from tests.complaints.helpers import TUESDAY_10_SHANGHAI, open_complaint, set_tier, staff
from tests.harness import RunningService, Stack, auth, problem
from tests.shared.audit_support import by, entries, the_entry

MANAGER = staff(Role.manager, "manager-1")
SUPERVISOR = staff(Role.supervisor, "supervisor-1")


@pytest.fixture
async def complaints(stack: Stack) -> RunningService:
    return await stack.start("complaints", clock=ManualClock(TUESDAY_10_SHANGHAI), run_workers=False)


async def test_policy_changes_are_recorded_with_the_version_before_and_after(
    complaints: RunningService,
) -> None:
    policy = default_policy().model_dump(mode="json") | {"warning_share": 0.5}
    assert (await complaints.client.put("/complaint-policy", json=policy, headers=MANAGER)).status_code == 200
    entry = await the_entry(complaints, "complaint_policy.put")
    by(entry, "manager-1", TUESDAY_10_SHANGHAI)
    assert entry["actor_role"] == "manager"
    assert (entry["subject_type"], entry["subject_id"]) == ("complaint_policy", "1")
    assert entry["before"]["version"] == 0 and entry["before"]["policy"]["warning_share"] == 0.75
    assert entry["after"]["version"] == 1 and entry["after"]["policy"]["warning_share"] == 0.5

    await complaints.client.put("/teams/billing", json={"display_name": "Billing"}, headers=MANAGER)
    rule = {"name": "billing", "category": "billing", "team": "billing"}
    routing = {"rules": [rule], "fallback_team": None}
    assert (await complaints.client.put("/routing-policy", json=routing, headers=MANAGER)).status_code == 200
    entry = await the_entry(complaints, "routing_policy.put")
    by(entry, "manager-1", TUESDAY_10_SHANGHAI)
    assert entry["before"] == {"version": 0, "policy": {"rules": [], "fallback_team": None}}
    assert entry["after"]["version"] == 1 and entry["after"]["policy"]["rules"][0]["team"] == "billing"


async def test_compensations_and_their_approval_are_recorded_without_the_free_text_reason(
    complaints: RunningService,
) -> None:
    customer = uuid.uuid4()
    await set_tier(complaints, customer, "gold")
    complaint = await open_complaint(complaints, customer_id=customer)
    offered = await complaints.client.post(
        f"/complaints/{complaint['id']}/compensations",
        json={"amount": "500.00", "currency": "CNY", "reason": "Mrs Wang's broken kettle"},
        headers=staff(Role.agent, "agent-1"),
    )
    assert offered.status_code == 201 and offered.json()["status"] == "pending"
    offer = await the_entry(complaints, "compensation.offer")
    by(offer, "agent-1", TUESDAY_10_SHANGHAI)
    assert offer["subject_id"] == offered.json()["id"]
    assert offer["before"] is None
    assert (offer["after"]["amount"], offer["after"]["status"]) == ("500.00", "pending")
    assert "reason" not in offer["after"]

    decided = await complaints.client.post(
        f"/compensations/{offered.json()['id']}/decision", json={"approve": True}, headers=SUPERVISOR
    )
    assert decided.status_code == 200
    approval = await the_entry(complaints, "compensation.approve")
    by(approval, "supervisor-1", TUESDAY_10_SHANGHAI)
    assert (approval["before"]["status"], approval["after"]["status"]) == ("pending", "granted")
    assert approval["after"]["decided_by"] == "supervisor-1"
    refused = await complaints.client.post(
        f"/complaints/{complaint['id']}/compensations",
        json={"amount": "600.00", "currency": "CNY", "reason": "for Mrs Wang again"},
        headers=staff(Role.agent, "agent-1"),
    )
    rejected = await complaints.client.post(
        f"/compensations/{refused.json()['id']}/decision", json={"approve": False}, headers=SUPERVISOR
    )
    assert rejected.status_code == 200
    rejection = await the_entry(complaints, "compensation.reject")
    by(rejection, "supervisor-1", TUESDAY_10_SHANGHAI)
    assert (rejection["before"]["status"], rejection["after"]["status"]) == ("pending", "rejected")
    everything = str(await entries(complaints))
    assert "Wang" not in everything


async def test_the_staff_directory_teams_and_canned_replies_are_recorded(complaints: RunningService) -> None:
    await complaints.client.put("/teams/billing", json={"display_name": "Billing"}, headers=MANAGER)
    await complaints.client.put("/teams/billing", json={"display_name": "Billing desk"}, headers=MANAGER)
    teams = await entries(complaints, action="team.put")
    assert [entry["after"]["display_name"] for entry in teams] == ["Billing desk", "Billing"]
    assert teams[1]["before"] is None and teams[0]["before"]["display_name"] == "Billing"

    person = {"display_name": "Ann", "role": "agent", "teams": ["billing"], "capacity": 3}
    assert (await complaints.client.put("/staff/ann", json=person, headers=MANAGER)).status_code == 201
    promoted = person | {"role": "supervisor"}
    assert (await complaints.client.put("/staff/ann", json=promoted, headers=MANAGER)).status_code == 200
    changes = await entries(complaints, action="staff.put", subject_id="ann")
    by(changes[0], "manager-1", TUESDAY_10_SHANGHAI)
    assert (changes[0]["before"]["role"], changes[0]["after"]["role"]) == ("agent", "supervisor")
    assert changes[1]["before"] is None and changes[1]["after"]["teams"] == ["billing"]

    macro = {"name": "late", "title": "Late delivery", "bodies": {"en": "Sorry it is late."}}
    created = await complaints.client.post("/macros", json=macro, headers=SUPERVISOR)
    macro_id = created.json()["id"]
    changed = macro | {"bodies": {"en": "Sorry it is late; it is on its way."}}
    await complaints.client.put(f"/macros/{macro_id}", json=changed, headers=SUPERVISOR)
    assert (await complaints.client.delete(f"/macros/{macro_id}", headers=SUPERVISOR)).status_code == 204
    history = await entries(complaints, subject_type="macro", subject_id=macro_id)
    assert [entry["action"] for entry in history] == ["macro.delete", "macro.replace", "macro.create"]
    for entry in history:
        by(entry, "supervisor-1", TUESDAY_10_SHANGHAI)
    deleted, replaced, made = history
    assert made["before"] is None and made["after"]["bodies"] == macro["bodies"]
    assert replaced["before"]["bodies"] == macro["bodies"]
    assert replaced["after"]["bodies"] == changed["bodies"]
    assert deleted["before"]["bodies"] == changed["bodies"] and deleted["after"] is None


async def test_only_managers_and_admins_read_the_log(complaints: RunningService) -> None:
    for role in (Role.agent, Role.supervisor):
        assert problem(await complaints.client.get("/audit", headers=staff(role)), 403)
        assert problem(await complaints.client.get("/audit.csv", headers=staff(role)), 403)
    service = auth(Role.service, subject="shop")
    assert problem(await complaints.client.get("/audit", headers=service), 403)
    assert problem(await complaints.client.get("/audit"), 401)
    for role in (Role.manager, Role.admin):
        assert (await complaints.client.get("/audit", headers=staff(role))).status_code == 200
