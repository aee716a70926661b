"""The analysis date: figures as of a chosen moment, pinned until cleared, and said so when empty."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from services.segmentation.policy import DEFAULT_POLICY
from shared.clock import ManualClock
from shared.events import Envelope, Event, envelope_for
from shared.events.customer import PurchaseRecorded
from shared.events.segmentation import TierChanged
from shared.roles import Role
from tests.customer.helpers import staged
from tests.e2e.system import count
from tests.harness import Stack, auth, eventually, problem
from tests.shared.bus_helpers import produce_events, purchase
from tests.shared.event_examples import example

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
END = NOW - timedelta(days=730)  # the history ended two years ago


def bought(customer_id: uuid.UUID, amount: str, at: datetime, *, imported: bool = True) -> Envelope[Event]:
    event = purchase(customer_id, amount)
    assert isinstance(event.data, PurchaseRecorded)
    return event.model_copy(
        update={"data": event.data.model_copy(update={"purchased_at": at, "imported": imported})}
    )


async def test_a_recompute_as_of_the_last_day_pins_the_picture_until_the_date_is_cleared(
    stack: Stack,
) -> None:
    clock = ManualClock(NOW)
    seg = await stack.start("segmentation", clock=clock, batch_check_seconds=0.1)
    manager, supervisor = auth(Role.manager), auth(Role.supervisor)
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    history = [
        *(bought(a, "5000.00", END - timedelta(days=d)) for d in (100, 50, 1)),
        bought(b, "200.00", END - timedelta(days=10)),
        bought(c, "50.00", END - timedelta(days=500)),  # before the year's window as of END: dormant
    ]
    await produce_events(stack.bootstrap, stack.prefix + "csm.customer", history)

    async def segment(customer_id: uuid.UUID) -> dict[str, Any]:
        found = await seg.client.get(f"/segments/{customer_id}", headers=auth())
        assert found.status_code == 200, found.text
        return found.json()  # type: ignore[no-any-return]

    async def all_counted() -> None:
        assert [(await segment(x))["lifetime_frequency"] for x in (a, b, c)] == [3, 1, 1]

    await eventually(all_counted)

    # As of now, the window holds no purchase: the answers say so rather than show empty figures.
    today = await seg.client.post("/cut-points/recompute", headers=manager)
    assert today.status_code == 200, today.text
    coverage = today.json()["coverage"]
    assert (coverage["buyers"], coverage["dormant"], coverage["pinned"]) == (0, 3, False)
    assert coverage["no_purchases_in_window"] is True and "No purchases in the window" in coverage["message"]
    pareto = (await seg.client.get("/analytics/pareto", headers=supervisor)).json()
    assert pareto["top_share_of_revenue"] is None and pareto["coverage"]["no_purchases_in_window"] is True

    # A moment in the future (beyond the clock skew) is refused, naming the field.
    future = {"as_of": (NOW + timedelta(hours=1)).isoformat()}
    for refused in (
        await seg.client.post("/cut-points/recompute", params=future, headers=manager),
        await seg.client.get("/analytics/distribution", params=future, headers=supervisor),
        await seg.client.post(
            "/policy/what-if", params=future, json=DEFAULT_POLICY.model_dump(mode="json"), headers=manager
        ),
    ):
        assert problem(refused, 422) == "analysis-date-in-future"
        assert refused.json()["errors"][0]["field"] == "as_of"

    # As of the history's last day: the year before it is the window.
    pinned = await seg.client.post(
        "/cut-points/recompute", params={"as_of": END.isoformat()}, headers=manager
    )
    assert pinned.status_code == 200, pinned.text
    coverage = pinned.json()["coverage"]
    assert (coverage["buyers"], coverage["dormant"], coverage["pinned"]) == (2, 1, True)
    assert datetime.fromisoformat(coverage["as_of"]) == END and coverage["message"] is None
    first = await segment(a)
    assert (first["tier"], first["figures"]["recency_days"], first["risk"]) == ("platinum", 1, "low")
    assert (await segment(c))["abc_class"] is None, "the dormant are in no ABC class"
    moves = [
        (e["data"]["customer_id"], e["data"]["tier"], e["data"]["cause"])
        for e in await staged(seg, TierChanged.type)
    ]
    assert (str(a), "platinum", "analysis_date") in moves, "re-labelled as of then: nobody's news"

    # The schedule keeps the pinned date: a day later the picture is the same.
    clock.advance(timedelta(hours=25))

    async def scheduled() -> dict[str, Any]:
        found = (await seg.client.get("/cut-points", headers=auth())).json()
        assert found["trigger"] == "schedule", found
        return found  # type: ignore[no-any-return]

    cut_points = await eventually(scheduled)
    assert datetime.fromisoformat(cut_points["as_of"]) == END and cut_points["population"] == 2
    assert (await segment(a))["tier"] == "platinum"

    # A live purchase after the date goes to the ledger, not into the pinned figures: nobody moves.
    # So does a complaint after it: kept, counted toward the risk once the date is cleared.
    await produce_events(
        stack.bootstrap, stack.prefix + "csm.customer", [bought(b, "20000.00", clock.now(), imported=False)]
    )
    complaint = example("csm.complaint.opened.v1", b, severity="critical", opened_at=clock.now())
    await produce_events(
        stack.bootstrap, stack.prefix + "csm.complaints", [envelope_for(complaint, source="/t")]
    )

    async def kept() -> None:
        assert await count(seg.database_url, "SELECT count(*) FROM purchase") == 6
        assert await count(seg.database_url, "SELECT count(*) FROM behaviour_signal") == 1

    await eventually(kept)
    after = await segment(b)
    assert (after["tier"], after["lifetime_frequency"], after["signal_points"]) == ("lead", 1, 0.0)

    # Analytics and what-if as of another moment compute it and write nothing.
    earlier = {"as_of": (END - timedelta(days=400)).isoformat()}  # only c had bought, 100 days before
    then = (await seg.client.get("/analytics/distribution", params=earlier, headers=supervisor)).json()
    assert then["tier"] == {"platinum": 1, "lead": 2} and then["coverage"]["buyers"] == 1
    at_end = (
        await seg.client.get("/analytics/pareto", params={"as_of": END.isoformat()}, headers=supervisor)
    ).json()
    assert at_end["top_share_of_revenue"] == 15000 / 15200 and at_end["coverage"]["dormant"] == 1
    what_if = await seg.client.post(
        "/policy/what-if", params=earlier, json=DEFAULT_POLICY.model_dump(mode="json"), headers=manager
    )
    assert what_if.json()["matrix"]["lead"]["platinum"] == 1, "c, as of then"
    assert (await segment(c))["tier"] == "lead", "nothing written"

    # Pinned to a day before a and b bought anything: nothing of theirs counts.
    then_pinned = await seg.client.post("/cut-points/recompute", params=earlier, headers=manager)
    assert then_pinned.json()["coverage"]["buyers"] == 1
    first = await segment(a)
    assert (first["lifetime_frequency"], first["figures"]["last_purchase_at"], first["tier"]) == (
        0,
        None,
        "lead",
    )
    assert (await segment(c))["tier"] == "platinum"

    # Cleared: the figures are rebuilt as of now, the live purchase counts, and a lapsed.
    cleared = await seg.client.delete("/cut-points/analysis-date", headers=manager)
    assert cleared.status_code == 200, cleared.text
    assert (cleared.json()["coverage"]["pinned"], cleared.json()["coverage"]["buyers"]) == (False, 1)
    live = await segment(b)
    assert (live["lifetime_frequency"], live["signal_points"], live["risk"]) == (2, 2.0, "at_risk")
    assert live["tier"] == "platinum", "the first 40% of the year's revenue, and not lost"
    assert ((await segment(a))["tier"], (await segment(a))["risk"]) == ("lead", "lost")
    later = (await seg.client.post("/cut-points/recompute", headers=manager)).json()["coverage"]
    assert later["pinned"] is False and datetime.fromisoformat(later["as_of"]) == clock.now()


async def test_purchase_days_are_counted_as_of_the_pinned_date_and_again_once_it_is_cleared(
    stack: Stack,
) -> None:
    clock = ManualClock(NOW)
    seg = await stack.start("segmentation", clock=clock)
    manager, customer = auth(Role.manager), uuid.uuid4()
    morning = END - timedelta(days=3, hours=5)
    history = [
        bought(customer, "100.00", morning),
        bought(customer, "80.00", morning + timedelta(hours=3)),  # the same (UTC) day: one purchase day
        bought(customer, "60.00", END - timedelta(days=1)),
        bought(customer, "40.00", END + timedelta(days=10), imported=False),  # after the date pinned below
    ]
    await produce_events(stack.bootstrap, stack.prefix + "csm.customer", history)
    days = "SELECT sum(purchase_days) FROM customer_segment"

    async def all_counted() -> None:
        found = (await seg.client.get(f"/segments/{customer}", headers=auth())).json()
        assert found.get("lifetime_frequency") == 4

    await eventually(all_counted)
    assert await count(seg.database_url, days) == 3

    pinned = await seg.client.post(
        "/cut-points/recompute", params={"as_of": END.isoformat()}, headers=manager
    )
    assert pinned.status_code == 200, pinned.text
    assert await count(seg.database_url, days) == 2, "the day after the analysis date does not count"

    cleared = await seg.client.delete("/cut-points/analysis-date", headers=manager)
    assert cleared.status_code == 200, cleared.text
    assert await count(seg.database_url, days) == 3
