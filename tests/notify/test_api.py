"""The notify API: roles, bad input as problem details, versioned playbooks, the dry run, staff tasks."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from services.notify.channels import SendFailed, WebhookSender
from services.notify.models import Contact, Notification, Task
from services.notify.webhook_targets import networks
from shared.clock import ManualClock
from shared.roles import Role
from tests.harness import RunningService, Stack, assert_documented, auth, problem
from tests.notify.support import START


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[RunningService]:
    yield await stack.start("notify", clock=ManualClock(START), run_workers=False)


async def add(api: RunningService, *rows: object) -> None:
    async with api.runtime.db.unit_of_work() as session:
        session.add_all(rows)


def a_task(customer_id: uuid.UUID, **fields: Any) -> Task:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "idempotency_key": str(uuid.uuid4()),
        "customer_id": customer_id,
        "kind": "care_call",
        "playbook": "first_purchase_care",
        "step": "care_call",
        "title": "回访",
        "purpose": "service",
        "assignee": None,
        "assignee_role": "agent",
        "status": "open",
        "due_at": START + timedelta(days=1),
        "created_at": START,
        **fields,
    }
    return Task(**values)


@pytest.mark.parametrize(
    ("method", "path", "allowed", "refused"),
    [
        ("GET", "/notifications", Role.service, None),
        ("GET", f"/customers/{uuid.uuid4()}/preferences", Role.service, None),
        ("GET", "/playbooks", Role.agent, Role.service),
        ("PUT", "/playbooks/first_purchase_care", Role.manager, Role.supervisor),
        ("PUT", "/policy", Role.manager, Role.agent),
        ("GET", "/tasks", Role.agent, Role.service),
        ("POST", "/announcements", Role.manager, Role.agent),
        ("GET", "/webhooks", Role.admin, Role.manager),
    ],
)
async def test_every_endpoint_needs_a_token_with_the_right_role(
    api: RunningService, method: str, path: str, allowed: Role, refused: Role | None
) -> None:
    anonymous = await api.client.request(method, path)
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"
    if refused is not None:
        assert (await api.client.request(method, path, headers=auth(refused))).status_code == 403
    assert (await api.client.request(method, path, headers=auth(allowed))).status_code not in (401, 403)


async def test_a_saved_playbook_is_a_new_version_in_force_and_the_old_ones_are_kept(
    api: RunningService,
) -> None:
    shipped = (await api.client.get("/playbooks/win_back", headers=auth())).json()
    assert (shipped["version"], shipped["created_by"]) == (0, "csm (shipped default)")
    definition = shipped["definition"]
    definition["conditions"] = [{"fact": "event.risk", "equals": "lost"}]
    saved = await api.client.put(
        "/playbooks/win_back", json=definition, headers=auth(Role.manager, subject="m-1")
    )
    assert saved.status_code == 200, saved.text
    assert (saved.json()["version"], saved.json()["created_by"]) == (1, "m-1")
    again = await api.client.put("/playbooks/win_back", json=definition, headers=auth(Role.manager))
    assert again.json()["version"] == 1, "saving the same definition again changes nothing"
    versions = (await api.client.get("/playbooks/win_back/versions", headers=auth())).json()
    assert [v["version"] for v in versions] == [1, 0]
    assert (await api.client.get("/playbooks/win_back", headers=auth())).json()["definition"][
        "conditions"
    ] == [{"fact": "event.risk", "equals": "lost"}]
    new = {**definition, "name": "A brand-new playbook"}
    assert (await api.client.put("/playbooks/my_own", json=new, headers=auth(Role.manager))).json()[
        "version"
    ] == 1
    keys = [p["key"] for p in (await api.client.get("/playbooks", headers=auth())).json()]
    assert "my_own" in keys and len(keys) == 11
    assert (
        problem(await api.client.get("/playbooks/nothing_here", headers=auth()), 404) == "playbook-not-found"
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"conditions": [{"fact": "event.colour", "equals": "red"}]}, "conditions.0.fact"),
        (
            {
                "steps": [
                    {
                        "kind": "message",
                        "id": "x",
                        "purpose": "service",
                        "channels": ["email"],
                        "template": {"zh": {"title": "{{", "body": "b"}},
                    }
                ]
            },
            "steps.0.message.template.zh.title",
        ),
        ({"trigger": {"kind": "event", "event": "csm.unknown.v1"}}, "trigger.event.event"),
        ({"surprise": 1}, "surprise"),
    ],
)
async def test_a_bad_playbook_is_a_422_naming_the_field(
    api: RunningService, change: dict[str, Any], field: str
) -> None:
    definition = (await api.client.get("/playbooks/win_back", headers=auth())).json()["definition"]
    response = await api.client.put(
        "/playbooks/win_back", json={**definition, **change}, headers=auth(Role.manager)
    )
    assert response.status_code == 422
    assert field in [error["field"] for error in response.json()["errors"]], response.json()


async def test_bad_input_elsewhere_is_a_422_naming_the_field(api: RunningService) -> None:
    customer = uuid.uuid4()
    cases = [
        (
            "PUT",
            f"/customers/{customer}/preferences",
            {"channels": {"fax": {"service": True}}},
            "channels.fax.[key]",
        ),
        (
            "PUT",
            f"/customers/{customer}/preferences",
            {"quiet_hours": {"start": "22:00", "end": "22:00"}},
            "quiet_hours",
        ),
        (
            "PUT",
            f"/customers/{customer}/preferences",
            {"quiet_hours": {"start": "22:00+08:00", "end": "07:00"}},
            "quiet_hours.start",
        ),
        ("PUT", "/policy", {"default_time_zone": "Mars/Olympus"}, "default_time_zone"),
        ("POST", "/announcements", {"topic": " ", "title": "t", "body": "b"}, "topic"),
        (
            "POST",
            "/announcements",
            {"topic": "tea", "title": "t", "body": "b", "playbook": "win_back"},
            "playbook",
        ),
        (
            "POST",
            "/playbooks/dry-run",
            {"event": {"type": "csm.purchase.recorded.v1", "data": {"customer_id": "x"}}},
            "event.data.customer_id",
        ),
        ("GET", "/notifications?cursor=nonsense", None, "cursor"),
        ("GET", "/tasks?due_before=2026-01-01T00:00:00", None, "due_before"),
    ]
    for method, path, body, field in cases:
        response = await api.client.request(method, path, json=body, headers=auth(Role.admin))
        assert response.status_code == 422, (path, response.text)
        assert field in [e["field"] for e in response.json()["errors"]], (path, response.json())


async def test_the_dry_run_shows_what_an_event_would_cause_and_writes_nothing(api: RunningService) -> None:
    customer = uuid.uuid4()
    await add(
        api,
        Contact(
            customer_id=customer,
            known=True,
            name="李娜",
            email="li@example.com",
            phone=None,
            locale="zh-CN",
            time_zone="Asia/Shanghai",
            status="active",
            key_account=False,
            account_manager="am-1",
        ),
    )
    data = {
        "customer_id": str(customer),
        "purchase_id": str(uuid.uuid4()),
        "order_id": "SO-7",
        "amount": "99.00",
        "currency": "CNY",
        "channel": "web",
        "purchased_at": START.isoformat(),
        "item_count": 1,
        "first_purchase": True,
    }
    response = await api.client.post(
        "/playbooks/dry-run",
        json={"event": {"type": "csm.purchase.recorded.v1", "data": data}},
        headers=auth(),
    )
    assert response.status_code == 200, response.text
    [outcome] = response.json()["playbooks"]
    assert (outcome["playbook"], outcome["starts"]) == ("first_purchase_care", True)
    thanks, care_call = outcome["actions"]
    assert (thanks["step"], thanks["channel"], thanks["title"], thanks["blocked"]) == (
        "thanks",
        "email",
        "感谢您的首次购买",
        None,
    )
    assert "SO-7" in thanks["body"]
    assert (care_call["step"], care_call["assignee"]) == ("care_call", "am-1")
    assert care_call["at"].startswith((START + timedelta(days=7)).date().isoformat())

    repeat = {**data, "first_purchase": False}
    [not_first] = (
        await api.client.post(
            "/playbooks/dry-run",
            json={"event": {"type": "csm.purchase.recorded.v1", "data": repeat}},
            headers=auth(),
        )
    ).json()["playbooks"]
    assert (not_first["starts"], not_first["reason"]) == (
        False,
        "its conditions do not hold: event.first_purchase",
    )

    draft = (await api.client.get("/playbooks/first_purchase_care", headers=auth())).json()["definition"]
    draft["steps"][0]["purpose"] = "marketing"
    [drafted] = (
        await api.client.post(
            "/playbooks/dry-run",
            json={
                "event": {"type": "csm.purchase.recorded.v1", "data": data},
                "playbook_key": "first_purchase_care",
                "draft": draft,
            },
            headers=auth(),
        )
    ).json()["playbooks"]
    assert drafted["actions"][0]["blocked"].startswith("no marketing consent for email")

    async with api.runtime.db.read() as session:
        assert await session.scalar(sa.select(sa.func.count()).select_from(Notification)) == 0
        assert await session.scalar(sa.select(sa.func.count()).select_from(Task)) == 0


async def test_staff_list_claim_and_complete_tasks(api: RunningService) -> None:
    customer, other = uuid.uuid4(), uuid.uuid4()
    mine = a_task(customer, assignee="agent-1", due_at=START + timedelta(hours=2))
    anyones = a_task(customer, due_at=START + timedelta(days=2))
    managers = a_task(other, assignee_role="manager", kind="win_back_call")
    await add(api, mine, anyones, managers)

    listed = (await api.client.get("/tasks", params={"customer_id": str(customer)}, headers=auth())).json()
    assert [t["id"] for t in listed["items"]] == [str(mine.id), str(anyones.id)], "soonest due first"
    by_assignee = (await api.client.get("/tasks", params={"assignee": "agent-1"}, headers=auth())).json()
    assert [t["id"] for t in by_assignee["items"]] == [str(mine.id)]
    due_soon = (
        await api.client.get(
            "/tasks", params={"due_before": (START + timedelta(days=1)).isoformat()}, headers=auth()
        )
    ).json()
    assert [t["id"] for t in due_soon["items"]] == [str(mine.id)]
    first_page = (await api.client.get("/tasks", params={"limit": 2}, headers=auth())).json()
    second_page = (
        await api.client.get(
            "/tasks", params={"limit": 2, "cursor": first_page["next_cursor"]}, headers=auth()
        )
    ).json()
    assert (
        len(first_page["items"]) == 2
        and len(second_page["items"]) == 1
        and second_page["next_cursor"] is None
    )

    assert (
        await api.client.post(f"/tasks/{mine.id}/claim", headers=auth(subject="agent-2"))
    ).status_code == 403
    assert (
        await api.client.post(f"/tasks/{managers.id}/claim", headers=auth(subject="agent-2"))
    ).status_code == 403
    claimed = await api.client.post(f"/tasks/{anyones.id}/claim", headers=auth(subject="agent-2"))
    assert (claimed.status_code, claimed.json()["claimed_by"]) == (200, "agent-2")
    taken = await api.client.post(f"/tasks/{anyones.id}/claim", headers=auth(subject="agent-3"))
    assert problem(taken, 409) == "task-claimed" and taken.json()["claimed_by"] == "agent-2"
    done = await api.client.post(
        f"/tasks/{anyones.id}/complete",
        json={"outcome": "客户满意，已解答安装问题"},
        headers=auth(subject="agent-2"),
    )
    assert done.status_code == 200
    assert (done.json()["status"], done.json()["completed_by"]) == ("done", "agent-2")
    again = await api.client.post(
        f"/tasks/{anyones.id}/complete", json={"outcome": "again"}, headers=auth(subject="agent-2")
    )
    assert problem(again, 409) == "task-done"
    supervised = await api.client.post(
        f"/tasks/{mine.id}/complete",
        json={"outcome": "done for them"},
        headers=auth(Role.supervisor, subject="sup-1"),
    )
    assert supervised.json()["status"] == "done"
    empty = await api.client.post(
        f"/tasks/{managers.id}/complete", json={"outcome": ""}, headers=auth(Role.manager)
    )
    assert empty.status_code == 422 and empty.json()["errors"][0]["field"] == "outcome"
    assert problem(await api.client.get(f"/tasks/{uuid.uuid4()}", headers=auth()), 404) == "task-not-found"


async def test_apps_fetch_a_customers_in_app_messages_and_mark_them_read(api: RunningService) -> None:
    customer = uuid.uuid4()
    messages = [
        Notification(
            id=uuid.uuid4(),
            customer_id=customer,
            idempotency_key=f"k{n}",
            playbook="p",
            step="s",
            channel=channel,
            purpose="service",
            title=f"t{n}",
            body="b",
            status="sent",
            created_at=START + timedelta(minutes=n),
            due_at=START,
            candidates=[channel],
            language="zh",
        )
        for n, channel in enumerate(["in_app", "email", "in_app"])
    ]
    await add(api, *messages)
    inbox = (
        await api.client.get(
            "/notifications",
            params={"customer_id": str(customer), "channel": "in_app"},
            headers=auth(Role.service),
        )
    ).json()
    assert [m["title"] for m in inbox["items"]] == ["t2", "t0"], "newest first"
    read = await api.client.post(f"/notifications/{messages[0].id}/read", headers=auth(Role.service))
    assert read.json()["read_at"] == START.isoformat().replace("+00:00", "Z")
    missing = await api.client.get(f"/notifications/{uuid.uuid4()}", headers=auth())
    assert problem(missing, 404) == "notification-not-found"


async def test_webhook_secrets_are_shown_once_and_can_be_rotated(api: RunningService) -> None:
    created = await api.client.put(
        "/webhooks/ops-chat", json={"url": "https://chat.example.com/hook"}, headers=auth(Role.admin)
    )
    secret = created.json()["secret"]
    assert secret.startswith("whsec_")
    listed = (await api.client.get("/webhooks", headers=auth(Role.admin))).json()
    assert listed[0]["secret"] is None and listed[0]["url"] == "https://chat.example.com/hook"
    rotated = await api.client.put(
        "/webhooks/ops-chat",
        json={"url": "https://chat.example.com/hook", "rotate_secret": True},
        headers=auth(Role.admin),
    )
    assert rotated.json()["secret"] not in (None, secret)
    bad = await api.client.put("/webhooks/ops-chat", json={"url": "not a url"}, headers=auth(Role.admin))
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "url"
    assert (await api.client.delete("/webhooks/ops-chat", headers=auth(Role.admin))).status_code == 204
    gone = await api.client.delete("/webhooks/ops-chat", headers=auth(Role.admin))
    assert problem(gone, 404) == "webhook-not-found"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:8001/customers", "127.0.0.1 is a loopback address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
        ("http://10.1.2.3/hook", "10.1.2.3 is a private address"),
        ("http://2130706433/hook", "127.0.0.1 is a loopback address"),
        ("http://0x7f.1/hook", "127.0.0.1 is a loopback address"),
        ("http://[::ffff:169.254.169.254]/", "is a link-local address"),
        ("http://localhost:6379/", "localhost resolves to 127.0.0.1, a loopback address"),
        ("https://ops:hunter2@chat.example.com/hook", "may not carry credentials"),
    ],
)
async def test_a_webhook_may_not_point_inside_the_network_or_carry_credentials(
    api: RunningService, url: str, reason: str
) -> None:
    refused = await api.client.put("/webhooks/inside", json={"url": url}, headers=auth(Role.admin))
    assert problem(refused, 422) == "webhook-target-refused"
    assert reason in refused.json()["detail"]
    assert refused.json()["errors"][0]["field"] == "url"
    assert (await api.client.get("/webhooks", headers=auth(Role.admin))).json() == []


async def test_a_webhook_target_is_checked_again_when_sending_after_name_resolution() -> None:
    sender = WebhookSender(httpx.AsyncClient())
    with pytest.raises(SendFailed, match=r"localhost resolves to 127\.0\.0\.1") as refused:
        await sender.send(
            url="http://localhost:9/hook", secret="whsec_" + "A" * 32, payload={}, idempotency_key="k"
        )
    assert refused.value.permanent
    allowed = WebhookSender(httpx.AsyncClient(), allowed=networks(["127.0.0.0/8"]))
    with pytest.raises(SendFailed) as unreachable:  # allowed, so it is tried; nothing listens on port 9
        await allowed.send(
            url="http://localhost:9/hook", secret="whsec_" + "A" * 32, payload={}, idempotency_key="k"
        )
    assert "refused" not in str(unreachable.value) and not unreachable.value.permanent


async def test_a_policy_is_saved_whole_and_an_empty_one_changes_nothing(api: RunningService) -> None:
    current = (await api.client.get("/policy", headers=auth())).json()
    tuned = {**current["policy"], "default_locale": "en-GB"}
    saved = await api.client.put("/policy", json=tuned, headers=auth(Role.manager))
    assert saved.status_code == 200, saved.text
    empty = await api.client.put("/policy", json={}, headers=auth(Role.manager))
    assert problem(empty, 422) == "validation-error"
    [error] = empty.json()["errors"]
    assert "saved whole" in error["message"] and "missing: quiet_hours, marketing_cap" in error["message"]
    partial = await api.client.put("/policy", json={"default_locale": "zh-CN"}, headers=auth(Role.manager))
    assert partial.status_code == 422
    after = (await api.client.get("/policy", headers=auth())).json()
    assert (after["version"], after["policy"]["default_locale"]) == (saved.json()["version"], "en-GB")
    schema = (await api.client.get("/openapi.json")).json()["components"]["schemas"]["PolicyDocument"]
    assert set(schema["required"]) == set(schema["properties"])


async def test_preferences_are_kept_only_for_a_customer_notify_knows(api: RunningService) -> None:
    nobody = await api.client.put(
        f"/customers/{uuid.uuid4()}/preferences",
        json={"quiet_hours": {"start": "22:00", "end": "07:00"}},
        headers=auth(Role.service),
    )
    assert problem(nobody, 404) == "customer-not-known"


async def test_a_dry_run_of_a_hostile_draft_is_refused_naming_the_step(api: RunningService) -> None:
    customer = uuid.uuid4()
    await add(
        api,
        Contact(
            customer_id=customer, known=True, name="李娜", email="li@example.com", phone=None,
            locale="zh-CN", time_zone="Asia/Shanghai", status="active", key_account=False,
            account_manager=None,
        ),
    )  # fmt: skip
    draft = (await api.client.get("/playbooks/first_purchase_care", headers=auth())).json()["definition"]
    draft["steps"][0]["template"]["zh"]["body"] = (
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    )
    data = {
        "customer_id": str(customer), "purchase_id": str(uuid.uuid4()), "order_id": "SO-7", "amount": "99.00",
        "currency": "CNY", "channel": "web", "purchased_at": START.isoformat(), "item_count": 1,
        "first_purchase": True,
    }  # fmt: skip
    request = {
        "event": {"type": "csm.purchase.recorded.v1", "data": data},
        "playbook_key": "first_purchase_care",
        "draft": draft,
    }
    refused = await api.client.post("/playbooks/dry-run", json=request, headers=auth(Role.agent))
    assert problem(refused, 422) == "validation-error"
    assert refused.json()["errors"][0]["field"] == "draft.steps.0"
    assert "more than 100,000 loop steps" in refused.json()["detail"]

    draft["steps"][0]["template"]["zh"]["body"] = "{{ 'a' * 200000000 }}"
    too_long = await api.client.post("/playbooks/dry-run", json=request, headers=auth(Role.agent))
    assert "longer than 100,000 characters" in too_long.json()["detail"]


async def test_the_policy_says_its_quiet_hours_as_documented(api: RunningService) -> None:
    """A time of day on the customer's clock has no offset: the document must not call it an RFC 3339 time."""
    shipped = await api.client.get("/policy", headers=auth())
    await assert_documented(api.client, "GET", "/policy", shipped)
    tuned = {**shipped.json()["policy"], "quiet_hours": {"start": "22:30", "end": "07:00"}}
    saved = await api.client.put("/policy", json=tuned, headers=auth(Role.manager))
    assert saved.json()["policy"]["quiet_hours"]["start"] == "22:30:00", saved.text
    await assert_documented(api.client, "PUT", "/policy", saved)
