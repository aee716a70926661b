"""The staff directory over HTTP: managers keep it, staff read it, and the workflow uses it for first
owners, assignees and the escalation ladder, while names it does not know keep their old meaning."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from shared.broker import free_port
from shared.clock import ManualClock
from shared.roles import Role
from tests.complaints.helpers import TUESDAY_10_SHANGHAI, open_complaint, staff, staged
from tests.complaints.test_mail import complaints_of, mail, registered, send
from tests.harness import RunningService, Stack, auth, problem

MANAGER = staff(Role.manager, "manager-1")
SUPERVISOR = staff(Role.supervisor, "supervisor-1")
WEEKDAYS_9_TO_6 = {day: ["09:00-18:00"] for day in ("mon", "tue", "wed", "thu", "fri")}


async def put_team(service: RunningService, name: str, **fields: Any) -> dict[str, Any]:
    response = await service.client.put(
        f"/teams/{name}", json={"display_name": name.title(), **fields}, headers=MANAGER
    )
    assert response.status_code in (200, 201), response.text
    return response.json()  # type: ignore[no-any-return]


async def put_person(service: RunningService, subject: str, **fields: Any) -> dict[str, Any]:
    body = {"display_name": subject.title(), "role": "agent", **fields}
    response = await service.client.put(f"/staff/{subject}", json=body, headers=MANAGER)
    assert response.status_code in (200, 201), response.text
    return response.json()  # type: ignore[no-any-return]


def field_of(response: Any) -> str:
    problem(response, 422)
    return str(response.json()["errors"][0]["field"])


async def test_managers_keep_the_directory_and_every_staff_member_reads_it(stack: Stack) -> None:
    complaints = await stack.start("complaints", run_workers=False)
    person = {"display_name": "Li Na", "role": "agent", "teams": ["billing"], "languages": ["zh-CN", "en"]}
    for refused in (staff(), SUPERVISOR):
        assert problem(await complaints.client.put("/staff/li", json=person, headers=refused), 403)
        billing = {"display_name": "Billing"}
        assert problem(await complaints.client.put("/teams/billing", json=billing, headers=refused), 403)
    assert (
        problem(await complaints.client.put("/staff/li", json=person, headers=MANAGER), 422) == "unknown-team"
    )
    created = await complaints.client.put("/teams/billing", json={"display_name": "账务组"}, headers=MANAGER)
    assert created.status_code == 201 and created.json()["members"] == []
    first = await complaints.client.put("/staff/li", json=person, headers=MANAGER)
    assert first.status_code == 201 and first.json()["teams"] == ["billing"]
    again = await complaints.client.put(
        "/staff/li", json={**person, "capacity": 3}, headers=staff(Role.admin, "admin-1")
    )
    assert again.status_code == 200 and again.json()["capacity"] == 3

    mine = await complaints.client.get("/staff/me", headers=staff(subject="li"))
    assert mine.status_code == 200 and mine.json()["display_name"] == "Li Na"
    assert problem(await complaints.client.get("/staff/me", headers=staff(subject="nobody")), 404)
    team = await complaints.client.get("/teams/billing", headers=staff())
    assert team.json()["members"] == ["li"]
    await put_person(complaints, "wang")
    listed = await complaints.client.get("/staff", params={"team": "billing"}, headers=staff())
    assert [p["subject"] for p in listed.json()["items"]] == ["li"]
    everyone = await complaints.client.get("/staff", params={"limit": 1}, headers=staff())
    following = await complaints.client.get(
        "/staff", params={"limit": 1, "cursor": everyone.json()["next_cursor"]}, headers=staff()
    )
    assert [p["subject"] for p in everyone.json()["items"] + following.json()["items"]] == ["li", "wang"]
    assert problem(await complaints.client.get("/staff", headers=auth(Role.service, "shop")), 403)


async def test_bad_entries_are_refused_naming_the_field(stack: Stack) -> None:
    complaints = await stack.start("complaints", run_workers=False)
    person = {"display_name": "Li Na", "role": "agent"}
    cases: dict[str, dict[str, object]] = {
        "time_zone": {"time_zone": "Mars/Olympus"},
        "working_hours.tue.0": {"working_hours": {"tue": ["18:00-09:00"]}},
        "working_hours.someday.[key]": {"working_hours": {"someday": ["09:00-18:00"]}},
        "capacity": {"capacity": -1},
        "role": {"role": "service"},
        "languages.0": {"languages": ["中文"]},
        "skills": {"skills": ["billing", "billing"]},
        "email": {"email": "not an address"},
        "nickname": {"nickname": "Nana"},
    }
    for field, change in cases.items():
        response = await complaints.client.put("/staff/li", json={**person, **change}, headers=MANAGER)
        assert field_of(response) == field, (field, response.text)
    lead = await complaints.client.put(
        "/teams/billing", json={"display_name": "Billing", "lead": "nobody"}, headers=MANAGER
    )
    assert problem(lead, 422) == "unknown-person" and lead.json()["errors"][0]["field"] == "lead"
    assert problem(
        await complaints.client.put("/teams/Billing!", json={"display_name": "x"}, headers=MANAGER), 422
    )


async def test_work_given_to_a_team_goes_to_its_least_loaded_member_on_duty_with_room(stack: Stack) -> None:
    # Tuesday 10:00 in Shanghai, 02:00 in London.
    clock = ManualClock(TUESDAY_10_SHANGHAI)
    complaints = await stack.start("complaints", clock=clock, run_workers=False)
    await put_team(complaints, "billing")
    await put_person(complaints, "shanghai-a", teams=["billing"], working_hours=WEEKDAYS_9_TO_6, capacity=2)
    await put_person(complaints, "shanghai-b", teams=["billing"], working_hours=WEEKDAYS_9_TO_6, capacity=1)
    await put_person(
        complaints, "london", teams=["billing"], time_zone="Europe/London", working_hours=WEEKDAYS_9_TO_6
    )
    await put_person(complaints, "away", teams=["billing"], capacity=50, active=False)

    assigned = []
    for _ in range(3):
        complaint = await open_complaint(complaints, headers=SUPERVISOR)
        response = await complaints.client.post(
            f"/complaints/{complaint['id']}/assignment", json={"assignee": "billing"}, headers=SUPERVISOR
        )
        assert response.status_code == 200, response.text
        assigned.append(response.json()["assignee"])
    # Both free: a tie goes to the subject; then b (1 of 1) is full and a takes the rest, up to 2 of 2.
    assert assigned == ["shanghai-a", "shanghai-b", "shanghai-a"]
    fourth = await open_complaint(complaints, headers=SUPERVISOR)
    full = await complaints.client.post(
        f"/complaints/{fourth['id']}/assignment", json={"assignee": "billing"}, headers=SUPERVISOR
    )
    assert problem(full, 409) == "team-unavailable"
    inactive = await complaints.client.post(
        f"/complaints/{fourth['id']}/assignment", json={"assignee": "away"}, headers=SUPERVISOR
    )
    assert problem(inactive, 409) == "person-inactive"
    # London's morning begins: 09:00 there is 17:00 in Shanghai.
    clock.advance(timedelta(hours=7))
    london = await complaints.client.post(
        f"/complaints/{fourth['id']}/assignment", json={"assignee": "billing"}, headers=SUPERVISOR
    )
    assert london.json()["assignee"] == "london"
    # A name the directory does not know is a subject, as before.
    stranger = await complaints.client.post(
        f"/complaints/{fourth['id']}/assignment", json={"assignee": "agent-77"}, headers=SUPERVISOR
    )
    assert stranger.json()["assignee"] == "agent-77"


async def test_a_system_naming_a_team_as_receiver_gives_the_complaint_to_a_member_or_the_team(
    stack: Stack,
) -> None:
    complaints = await stack.start("complaints", clock=ManualClock(TUESDAY_10_SHANGHAI), run_workers=False)
    shop = auth(Role.service, "shop")
    await put_team(complaints, "hotline")
    await put_person(complaints, "operator", teams=["hotline"], capacity=1)
    first = await open_complaint(complaints, headers=shop, received_by="hotline")
    assert first["first_owner"] == "operator"
    # The operator is full: the complaint is still taken, and waits with the team.
    second = await open_complaint(complaints, headers=shop, received_by="hotline")
    assert second["first_owner"] == "hotline"
    third = await open_complaint(complaints, headers=shop, received_by="till-7")
    assert third["first_owner"] == "till-7"


async def test_a_team_on_the_escalation_ladder_is_answered_for_by_its_lead(stack: Stack) -> None:
    complaints = await stack.start("complaints", clock=ManualClock(TUESDAY_10_SHANGHAI), run_workers=False)
    # The default ladder names the role "supervisor"; a team of that name now stands for it.
    await put_person(complaints, "zhang", role="supervisor")
    await put_team(complaints, "supervisor", lead="zhang")
    complaint = await open_complaint(complaints)
    climbed = await complaints.client.post(
        f"/complaints/{complaint['id']}/escalations", json={"reason": "disputes the refund"}, headers=staff()
    )
    assert (climbed.json()["level_name"], climbed.json()["must_act"]) == ("supervisor", "zhang")
    escalated = [
        json.loads(body)["data"]
        for kind, body in await staged(complaints)
        if kind == "csm.complaint.escalated.v1"
    ]
    assert escalated[0]["must_act"] == "zhang"
    # A lead who is inactive does not answer: the ladder names the team again.
    await put_person(complaints, "zhang", role="supervisor", active=False)
    other = await open_complaint(complaints)
    climbed = await complaints.client.post(
        f"/complaints/{other['id']}/escalations", json={"reason": "disputes"}, headers=staff()
    )
    assert climbed.json()["must_act"] == "supervisor"


async def test_a_complaint_held_by_a_team_may_be_worked_by_its_members_only(stack: Stack) -> None:
    complaints = await stack.start("complaints", clock=ManualClock(TUESDAY_10_SHANGHAI), run_workers=False)
    await put_team(complaints, "hotline")
    await put_person(complaints, "operator", teams=["hotline"], capacity=0)
    await put_person(complaints, "outsider")
    # Nobody in the hotline has room: the complaint waits with the team.
    waiting = await open_complaint(complaints, headers=auth(Role.service, "shop"), received_by="hotline")
    assert waiting["first_owner"] == "hotline"
    url = f"/complaints/{waiting['id']}/assignment"
    refused = await complaints.client.post(
        url, json={"assignee": "outsider"}, headers=staff(subject="outsider")
    )
    assert problem(refused, 403) == "not-your-complaint"
    taken = await complaints.client.post(
        url, json={"assignee": "operator"}, headers=staff(subject="operator")
    )
    assert taken.status_code == 200 and taken.json()["assignee"] == "operator"
    # Once the operator leaves, the complaints still waiting with the team are no longer theirs to work.
    other = await open_complaint(complaints, headers=auth(Role.service, "shop"), received_by="hotline")
    await put_person(complaints, "operator", teams=["hotline"], active=False)
    gone = await complaints.client.post(
        f"/complaints/{other['id']}/transitions",
        json={"to": "acknowledged"},
        headers=staff(subject="operator"),
    )
    assert problem(gone, 403) == "not-your-complaint"


async def test_mail_owned_by_the_mailbox_goes_to_a_member_when_the_mailbox_is_a_team(stack: Stack) -> None:
    complaints = await stack.start(
        "complaints",
        clock=ManualClock(TUESDAY_10_SHANGHAI),
        scan_interval_seconds=3600,
        mail_listen_port=free_port(),
    )
    # CSM_COMPLAINTS_MAIL_FIRST_OWNER is "mailbox" by default: made a team, its members take the mail.
    await put_team(complaints, "mailbox")
    await put_person(complaints, "mail-desk", teams=["mailbox"])
    customer = await registered(stack, complaints)
    await send(complaints, mail())
    [complaint] = await complaints_of(complaints, customer)
    assert (complaint["channel"], complaint["first_owner"]) == ("email", "mail-desk")
