"""Analytics over HTTP: the figures from real complaints, filtered by first owner, and as charts."""

from __future__ import annotations

import uuid
from datetime import timedelta
from xml.etree import ElementTree

from shared.clock import ManualClock
from shared.roles import Role
from tests.complaints.helpers import TUESDAY_10_SHANGHAI, move, open_complaint, set_tier, staff
from tests.harness import Stack


async def test_figures_and_charts_for_management(stack: Stack) -> None:
    clock = ManualClock(TUESDAY_10_SHANGHAI)
    complaints = await stack.start("complaints", clock=clock, run_workers=False)
    gold = uuid.uuid4()
    await set_tier(complaints, gold, "gold")
    quick = await open_complaint(
        complaints, customer_id=gold, headers=staff(subject="agent-a"), channel="web"
    )
    slow = await open_complaint(
        complaints, customer_id=gold, headers=staff(subject="agent-b"), category="billing"
    )
    await open_complaint(complaints, headers=staff(subject="agent-a"))
    clock.advance(timedelta(hours=1))
    await complaints.client.post(
        f"/complaints/{quick['id']}/resolution",
        json={"summary": "refunded", "root_cause": "billing_error"},
        headers=staff(subject="agent-a"),
    )
    clock.advance(timedelta(hours=2))
    await move(complaints, slow["id"], "acknowledged", headers=staff(subject="agent-b"))
    clock.advance(timedelta(hours=1))

    supervisor = staff(Role.supervisor, "supervisor-1")
    assert (await complaints.client.get("/complaints-analytics", headers=staff())).status_code == 403
    figures = (await complaints.client.get("/complaints-analytics", headers=supervisor)).json()
    assert figures["volume"]["total"] == 3
    assert figures["volume"]["by_channel"] == {"phone": 2, "web": 1}
    assert figures["volume"]["by_tier"] == {"gold": 2, "unknown": 1}
    # First responses: resolved at first contact after 1 hour (kept), acknowledged after 3 (late).
    assert figures["first_response_time"] == {"count": 2, "median_hours": 1.0, "p90_hours": 3.0}
    assert figures["sla_attainment"]["by_target"]["first_response"] == {"kept": 1, "decided": 2, "rate": 0.5}
    assert figures["first_contact_resolution_rate"] == 1.0
    assert figures["root_causes"][0]["root_cause"] == "billing_error"

    mine = (
        await complaints.client.get(
            "/complaints-analytics", params={"first_owner": "agent-a"}, headers=supervisor
        )
    ).json()
    assert mine["volume"]["total"] == 2
    window = await complaints.client.get(
        "/complaints-analytics", params={"since": "2020-01-01T00:00:00Z"}, headers=supervisor
    )
    assert window.status_code == 422 and window.json()["errors"][0]["field"] == "since"

    for chart in ("trend", "categories", "channels", "tiers", "sla", "times", "root_causes"):
        response = await complaints.client.get(f"/complaints-analytics/{chart}.svg", headers=supervisor)
        assert response.status_code == 200 and response.headers["content-type"] == "image/svg+xml"
        root = ElementTree.fromstring(response.content)
        assert root.tag.endswith("svg")
        assert b'xlink:href="http' not in response.content  # no script fetched from the internet
    unknown = await complaints.client.get("/complaints-analytics/pie.svg", headers=supervisor)
    assert unknown.status_code == 422
