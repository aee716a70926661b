"""Canned replies over HTTP: supervisors keep them, agents read and preview them; placeholders come
from the customer and the complaint, in Chinese and English, rendered in the sandbox on its budget."""

from __future__ import annotations

import uuid
from typing import Any

from shared.clock import ManualClock
from shared.roles import Role
from tests.complaints.helpers import TUESDAY_10_SHANGHAI, open_complaint, set_tier, staff
from tests.harness import RunningService, Stack, problem

SUPERVISOR = staff(Role.supervisor, "supervisor-1")
APOLOGY = {
    "name": "delivery-apology",
    "title": "Apology for a late delivery",
    "bodies": {
        "zh-CN": "{{ agent.name }}：您好，您关于{{ complaint.category_label }}的投诉"
        "（编号 {{ complaint.reference }}）"
        "已受理，我们将在 {{ complaint.first_response_due_at | localtime }} 前答复。"
        "{% if customer.tier == 'gold' %}金卡会员专线为您服务。{% endif %}",
        "en": "Dear customer, {{ agent.name }} here: your {{ complaint.category_label }} complaint "
        "({{ complaint.reference }}) is with us; "
        "we answer by {{ complaint.first_response_due_at | localtime }}.",
    },
}


async def create(service: RunningService, **changes: Any) -> Any:
    return await service.client.post("/macros", json={**APOLOGY, **changes}, headers=SUPERVISOR)


async def test_supervisors_keep_canned_replies_and_agents_read_them(stack: Stack) -> None:
    complaints = await stack.start("complaints", run_workers=False)
    assert problem(await create_as(complaints, staff()), 403)
    created = await create(complaints)
    assert created.status_code == 201, created.text
    macro = created.json()
    assert macro["created_by"] == "supervisor-1" and set(macro["bodies"]) == {"zh-CN", "en"}
    listed = await complaints.client.get("/macros", headers=staff())
    assert [item["name"] for item in listed.json()["items"]] == ["delivery-apology"]
    assert (await complaints.client.get(f"/macros/{macro['id']}", headers=staff())).json() == macro
    assert problem(await create(complaints), 409) == "macro-name-taken"

    changed = {**APOLOGY, "title": "Late delivery", "bodies": {"en": "Sorry, {{ agent.name }}."}}
    refused = await complaints.client.put(f"/macros/{macro['id']}", json=changed, headers=staff())
    assert problem(refused, 403)
    replaced = await complaints.client.put(
        f"/macros/{macro['id']}", json=changed, headers=staff(Role.manager, "manager-1")
    )
    assert replaced.json()["bodies"] == {"en": "Sorry, {{ agent.name }}."}
    assert replaced.json()["updated_by"] == "manager-1" and replaced.json()["created_by"] == "supervisor-1"
    other = (await create(complaints, name="other")).json()
    clash = await complaints.client.put(f"/macros/{other['id']}", json=changed, headers=SUPERVISOR)
    assert problem(clash, 409) == "macro-name-taken"

    assert problem(await complaints.client.delete(f"/macros/{macro['id']}", headers=staff()), 403)
    assert (await complaints.client.delete(f"/macros/{macro['id']}", headers=SUPERVISOR)).status_code == 204
    gone = await complaints.client.get(f"/macros/{macro['id']}", headers=staff())
    assert problem(gone, 404) == "macro-not-found"


async def create_as(service: RunningService, headers: dict[str, str]) -> Any:
    return await service.client.post("/macros", json=APOLOGY, headers=headers)


async def test_a_macro_that_would_not_render_is_refused_when_saved_naming_the_language(stack: Stack) -> None:
    complaints = await stack.start("complaints", run_workers=False)
    broken = {
        "a placeholder that does not exist": "Your complaint {{ complaint.refrence }}",
        "a syntax error": "{% if customer.tier %}gold",
        "a text too big for the budget": "{{ 'a' * 200000000 }}",
        "a way out of the sandbox": "{{ complaint.__class__.__mro__ }}",
    }
    for what, body in broken.items():
        response = await create(complaints, bodies={"zh-CN": "您好", "en": body})
        assert problem(response, 422) == "macro-does-not-render", what
        assert response.json()["errors"][0]["field"] == "bodies.en", what
    malformed: dict[str, dict[str, object]] = {
        "name": {"name": "Has Spaces"},
        "bodies": {"bodies": {}},
        "bodies.klingon!.[key]": {"bodies": {"klingon!": "x"}},
        "owner": {"owner": "me"},
    }
    for field, change in malformed.items():
        response = await create(complaints, **change)
        assert problem(response, 422) and response.json()["errors"][0]["field"] == field, response.text


async def test_the_preview_fills_the_placeholders_from_the_complaint_in_the_agents_language(
    stack: Stack,
) -> None:
    complaints = await stack.start("complaints", clock=ManualClock(TUESDAY_10_SHANGHAI), run_workers=False)
    gold = uuid.uuid4()
    await set_tier(complaints, gold, "gold")
    complaint = await open_complaint(complaints, customer_id=gold)
    macro = (await create(complaints)).json()
    reference = complaint["id"][:8]

    def preview(headers: dict[str, str], **body: Any) -> Any:
        return complaints.client.post(
            f"/macros/{macro['id']}/preview", json={"complaint_id": complaint["id"], **body}, headers=headers
        )

    # Gold answers within 2 hours: opened 10:00 in Shanghai, due 12:00 there.
    chinese = (await preview(staff())).json()
    assert chinese["language"] == "zh-CN"
    assert chinese["text"] == (
        f"agent-1：您好，您关于配送的投诉（编号 {reference}）已受理，"
        "我们将在 2026-11-24 12:00 前答复。金卡会员专线为您服务。"
    )
    english = (await preview(staff(), language="en-GB")).json()
    assert english["language"] == "en"
    assert english["text"] == (
        f"Dear customer, agent-1 here: your delivery complaint ({reference}) is with us; "
        "we answer by 2026-11-24 12:00."
    )
    # An agent in the directory: their name, their language and their time zone.
    person = {"display_name": "Emma", "role": "agent", "languages": ["en"], "time_zone": "Europe/London"}
    await complaints.client.put("/staff/emma", json=person, headers=staff(Role.manager, "manager-1"))
    emma = (await preview(staff(subject="emma"))).json()
    assert emma["language"] == "en" and emma["text"].startswith("Dear customer, Emma here")
    assert emma["text"].endswith("by 2026-11-24 04:00.")

    unknown = await complaints.client.post(
        f"/macros/{macro['id']}/preview", json={"complaint_id": str(uuid.uuid4())}, headers=staff()
    )
    assert problem(unknown, 404) == "complaint-not-found"
    missing = await complaints.client.post(
        f"/macros/{uuid.uuid4()}/preview", json={"complaint_id": complaint["id"]}, headers=staff()
    )
    assert problem(missing, 404) == "macro-not-found"
