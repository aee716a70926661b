"""The segmentation API: key accounts, policy what-if and apply, erasure and merge, analytics, bad input."""

from __future__ import annotations

import functools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from services.segmentation.policy import DEFAULT_POLICY
from shared.clock import ManualClock
from shared.events import envelope_for
from shared.events.segmentation import TierChanged
from shared.roles import Role
from tests.customer.helpers import staged
from tests.harness import Stack, auth, eventually, problem
from tests.shared.bus_helpers import produce_events, purchase
from tests.shared.event_examples import example

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


async def test_key_accounts_what_if_apply_erasure_merge_and_analytics(stack: Stack) -> None:
    seg = await stack.start("segmentation", clock=ManualClock(NOW))
    manager = auth(Role.manager, subject="boss")
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    topic = stack.prefix + "csm.customer"
    await produce_events(
        stack.bootstrap, topic, [purchase(a, "12000.00"), purchase(b, "500.00"), purchase(c, "2000.00")]
    )

    async def known(customer_id: uuid.UUID) -> dict[str, Any]:
        found = await seg.client.get(f"/segments/{customer_id}", headers=auth())
        assert found.status_code == 200, found.text
        return found.json()  # type: ignore[no-any-return]

    for customer_id in (a, b, c):
        await eventually(functools.partial(known, customer_id))

    # A key account overrides the rule, and who and why are kept.
    designated = await seg.client.put(
        f"/segments/{b}/key-account", json={"key_account": True, "reason": "strategic"}, headers=manager
    )
    assert designated.status_code == 200, designated.text
    body = designated.json()
    assert body["tier"] == "platinum" and body["key_account"] is True
    assert body["key_account_designation"]["designated_by"] == "boss"
    assert body["key_account_designation"]["reason"] == "strategic"
    refused = await seg.client.put(
        f"/segments/{b}/key-account", json={"key_account": True, "reason": "x"}, headers=auth(Role.agent)
    )
    assert refused.status_code == 403
    nobody = await seg.client.put(
        f"/segments/{uuid.uuid4()}/key-account",
        json={"key_account": True, "reason": "strategic"},
        headers=manager,
    )
    assert problem(nobody, 404) == "segment-not-found", "no segment is made for an id that names nobody"

    # What-if changes nothing; apply moves and announces.
    document = DEFAULT_POLICY.model_dump(mode="json")
    document["tier_rules"] = [{"tier": "gold", "min_monetary": "1000"}, {"tier": "lead"}]
    candidate = await seg.client.post("/policy/what-if", json=document, headers=manager)
    assert candidate.status_code == 200, candidate.text
    assert candidate.json()["matrix"]["iron"]["gold"] == 1  # c: 2,000 was iron, would be gold
    assert (await known(c))["tier"] == "iron"
    stored = await seg.client.put("/policy", json={"policy": document}, headers=manager)
    applied = await seg.client.post(f"/policy/versions/{stored.json()['version']}/apply", headers=manager)
    assert applied.status_code == 200 and applied.json()["matrix"]["iron"]["gold"] == 1
    moved = await known(c)
    assert moved["tier"] == "gold" and moved["policy_version"] == stored.json()["version"]
    assert moved["cut_points_version"] == applied.json()["cut_points_version"]
    assert (await seg.client.get("/policy", headers=auth())).json()["version"] == stored.json()["version"]
    # Each move says what caused it: a purchase, a person's decision, a policy.
    moves = [(e["data"]["customer_id"], e["data"]["cause"]) for e in await staged(seg, TierChanged.type)]
    assert sorted(moves[:3]) == sorted((str(x), "customer_event") for x in (a, b, c))
    assert moves[3] == (str(b), "manual")
    assert (str(c), "policy") in moves[4:] and {cause for _, cause in moves[4:]} == {"policy"}

    # Bad input names the field.
    bad = dict(document, window_days=0)
    refused_policy = await seg.client.post("/policy/what-if", json=bad, headers=manager)
    assert refused_policy.status_code == 422 and refused_policy.json()["errors"][0]["field"] == "window_days"
    unknown = await seg.client.put("/policy", json={"policy": document, "colour": "red"}, headers=manager)
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "colour"
    assert (await seg.client.get(f"/segments/{a}")).status_code == 401

    # Analytics: JSON and pictures.
    supervisor = auth(Role.supervisor)
    distribution = (await seg.client.get("/analytics/distribution", headers=supervisor)).json()
    assert distribution["customers"] == 3 and distribution["key_accounts"] == 1
    pareto = (await seg.client.get("/analytics/pareto", params={"points": 3}, headers=supervisor)).json()
    assert pareto["buyers"] == 3 and pareto["curve"][-1]["revenue_share"] == 1.0
    chart = await seg.client.get("/analytics/pareto/chart", headers=supervisor)
    assert chart.headers["content-type"] == "image/png" and chart.content[:4] == b"\x89PNG"
    window = {"start": (NOW - timedelta(days=1)).isoformat(), "end": NOW.isoformat()}
    migration = (await seg.client.get("/analytics/migration", params=window, headers=supervisor)).json()
    assert migration["matrix"]["none"]["gold"] == 2 and migration["matrix"]["none"]["platinum"] == 1
    svg = await seg.client.get(
        "/analytics/migration/chart", params={**window, "image_format": "svg"}, headers=supervisor
    )
    assert svg.headers["content-type"].startswith("image/svg+xml") and b"<svg" in svg.content
    retention = await seg.client.get(
        "/analytics/retention", params={"start": "2026-10-01", "end": "2026-11-30"}, headers=supervisor
    )
    assert retention.status_code == 200 and len(retention.json()["rows"]) == 8

    # Merge: what belonged to c now belongs to a. Erasure: nothing of b is left.
    merged = envelope_for(
        example("csm.customer.merged.v1", a).model_copy(update={"merged_id": c}), source="/tests"
    )
    erased = envelope_for(example("csm.customer.erased.v1", b), source="/tests")
    await produce_events(stack.bootstrap, topic, [merged, erased])

    async def merged_and_erased() -> None:
        survivor = await known(a)
        assert survivor["lifetime_frequency"] == 2 and survivor["figures"]["monetary"] == "14000.00"
        assert problem(await seg.client.get(f"/segments/{c}", headers=auth()), 404) == "segment-not-found"
        assert (await seg.client.get(f"/segments/{b}", headers=auth())).status_code == 404

    await eventually(merged_and_erased)
    assert (await seg.client.get(f"/segments/{b}/history", headers=auth())).json()["items"] == []


async def test_a_window_may_hold_a_companys_whole_history_but_no_more_than_a_century(stack: Stack) -> None:
    seg = await stack.start("segmentation", clock=ManualClock(NOW), run_workers=False)
    manager = auth(Role.manager)
    document = DEFAULT_POLICY.model_dump(mode="json")
    for window, status in ((30 * 366, 200), (36_600, 200), (36_601, 422)):
        for part in ("window_days", "signals"):
            candidate = dict(document)
            if part == "signals":
                candidate["signals"] = {**document["signals"], "window_days": window}
            else:
                candidate["window_days"] = window
            answer = await seg.client.post("/policy/what-if", json=candidate, headers=manager)
            assert answer.status_code == status, (part, window, answer.text)
