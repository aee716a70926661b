"""Segmentation's audit log: key-account designations and the policy (stored, put in force), with actor,
time, before and after; an agent cannot read it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from services.segmentation.policy import DEFAULT_POLICY
from shared.clock import ManualClock
from shared.roles import Role
from tests.harness import Stack, auth, eventually, problem
from tests.shared.audit_support import by, entries, the_entry
from tests.shared.bus_helpers import produce_events, purchase

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


async def test_key_accounts_and_policies_are_recorded_and_agents_cannot_read_them(stack: Stack) -> None:
    seg = await stack.start("segmentation", clock=ManualClock(NOW))
    manager = auth(Role.manager, subject="boss")
    customer = uuid.uuid4()
    await produce_events(stack.bootstrap, stack.prefix + "csm.customer", [purchase(customer, "500.00")])

    async def known() -> dict[str, Any]:
        found = await seg.client.get(f"/segments/{customer}", headers=auth())
        assert found.status_code == 200, found.text
        return found.json()  # type: ignore[no-any-return]

    tier = (await eventually(known))["tier"]
    designated = await seg.client.put(
        f"/segments/{customer}/key-account",
        json={"key_account": True, "reason": "Mr Li is the chairman's cousin"},
        headers=manager,
    )
    assert designated.status_code == 200, designated.text
    entry = await the_entry(seg, "key_account.put")
    by(entry, "boss", NOW)
    assert (entry["subject_type"], entry["subject_id"]) == ("customer", str(customer))
    assert entry["before"] == {"key_account": False, "tier": tier}
    assert entry["after"] == {"key_account": True, "tier": "platinum"}
    assert "Li" not in str(entry), "the reason, free text about a person, stays out of the log"

    document = DEFAULT_POLICY.model_dump(mode="json")
    document["tier_rules"] = [{"tier": "gold", "min_monetary": "100"}, {"tier": "lead"}]
    stored = await seg.client.put("/policy", json={"policy": document, "note": "lower gold"}, headers=manager)
    version = stored.json()["version"]
    entry = await the_entry(seg, "segmentation_policy.put")
    by(entry, "boss", NOW)
    assert entry["before"] is None
    assert entry["after"]["version"] == version and entry["after"]["note"] == "lower gold"
    gold = entry["after"]["policy"]["tier_rules"][0]
    assert (gold["tier"], gold["min_monetary"]) == ("gold", "100")
    assert (await seg.client.post(f"/policy/versions/{version}/apply", headers=manager)).status_code == 200
    entry = await the_entry(seg, "segmentation_policy.apply")
    by(entry, "boss", NOW)
    assert entry["before"]["in_force"] != version and entry["after"] == {"in_force": version}
    assert len(await entries(seg, actor="boss")) == 3

    assert problem(await seg.client.get("/audit", headers=auth(Role.agent)), 403)
    assert problem(await seg.client.get("/audit.csv", headers=auth(Role.supervisor)), 403)
