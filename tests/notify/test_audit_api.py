"""Notify's audit log: playbooks, the policy and webhook targets, with actor, time, before and after;
a webhook's path and secret stay out of it; an agent cannot read it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from shared.clock import ManualClock
from shared.roles import Role
from tests.harness import RunningService, Stack, auth, problem
from tests.notify.support import START
from tests.shared.audit_support import by, entries, the_entry


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[RunningService]:
    yield await stack.start("notify", clock=ManualClock(START), run_workers=False)


async def test_playbooks_and_the_policy_are_recorded(api: RunningService) -> None:
    shipped = (await api.client.get("/playbooks/win_back", headers=auth())).json()
    definition = shipped["definition"] | {"conditions": [{"fact": "event.risk", "equals": "lost"}]}
    manager = auth(Role.manager, subject="m-1")
    assert (await api.client.put("/playbooks/win_back", json=definition, headers=manager)).status_code == 200
    # Saving the same definition again changes nothing, and records nothing.
    assert (await api.client.put("/playbooks/win_back", json=definition, headers=manager)).status_code == 200
    entry = await the_entry(api, "playbook.put")
    by(entry, "m-1", START)
    assert (entry["subject_type"], entry["subject_id"]) == ("playbook", "win_back")
    assert entry["before"]["version"] == 0 and entry["before"]["definition"] == shipped["definition"]
    assert entry["after"]["version"] == 1 and entry["after"]["definition"]["conditions"] == [
        {"fact": "event.risk", "equals": "lost"}
    ]

    current = (await api.client.get("/policy", headers=auth())).json()
    tuned = {**current["policy"], "default_locale": "en-GB"}
    assert (await api.client.put("/policy", json=tuned, headers=manager)).status_code == 200
    entry = await the_entry(api, "notify_policy.put")
    by(entry, "m-1", START)
    assert entry["before"] == {"version": current["version"], "policy": current["policy"]}
    assert entry["after"]["policy"]["default_locale"] == "en-GB"


async def test_webhook_targets_are_recorded_by_origin_without_their_path_or_secret(
    api: RunningService,
) -> None:
    admin = auth(Role.admin, subject="root")
    created = await api.client.put(
        "/webhooks/ops-chat", json={"url": "https://chat.example.com/hooks/T0KEN"}, headers=admin
    )
    secret = created.json()["secret"]
    moved = {"url": "https://alerts.example.org/hooks/0THER", "enabled": False}
    assert (await api.client.put("/webhooks/ops-chat", json=moved, headers=admin)).status_code == 200
    assert (await api.client.delete("/webhooks/ops-chat", headers=admin)).status_code == 204
    deleted, changed, made = await entries(api, subject_type="webhook", subject_id="ops-chat")
    for entry in (deleted, changed, made):
        by(entry, "root", START)
    assert (made["action"], made["before"]) == ("webhook.put", None)
    assert made["after"] == {"origin": "https://chat.example.com", "enabled": True}
    assert changed["before"] == made["after"]
    assert changed["after"] == {"origin": "https://alerts.example.org", "enabled": False}
    assert (deleted["action"], deleted["before"], deleted["after"]) == (
        "webhook.delete",
        changed["after"],
        None,
    )
    everything = str(await entries(api))
    assert "T0KEN" not in everything and "0THER" not in everything and secret not in everything

    assert problem(await api.client.get("/audit", headers=auth(Role.agent)), 403)
    assert problem(await api.client.get("/audit", headers=auth(Role.service)), 403)
