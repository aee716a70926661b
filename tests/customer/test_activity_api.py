"""Interactions and behavioural signals, interests and consent, each change with its time and source."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.clock import ManualClock
from shared.roles import Role
from tests.customer.helpers import register, staged
from tests.harness import Stack, auth

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.fixture
async def customers(stack: Stack) -> tuple[Stack, ManualClock]:
    clock = ManualClock(NOW)
    await stack.start("customer", run_workers=False, clock=clock)
    return stack, clock


async def test_interactions_and_signals_are_logged_listed_and_announced(
    customers: tuple[Stack, ManualClock],
) -> None:
    stack, clock = customers
    client = stack["customer"].client
    customer = await register(stack)
    base = f"/customers/{customer['id']}/interactions"
    logged = [
        {
            "channel": "phone",
            "kind": "call",
            "summary": "Asked about delivery.",
            "outcome": "answered",
            "sentiment": "neutral",
            "occurred_at": "2026-11-20T10:00:00+08:00",
        },
        {"channel": "visit", "kind": "visit", "outcome": "order promised", "sentiment": "positive"},
        {
            "channel": "phone",
            "kind": "signal",
            "signal": "rude_to_staff",
            "sentiment": "negative",
            "summary": "Shouted.",
        },
        {"channel": "email", "kind": "email", "signal": "cancellation_request", "outcome": "escalated"},
    ]
    for interaction in logged:
        response = await client.post(base, json=interaction, headers=auth(subject="agent-7"))
        assert response.status_code == 201, response.text
        assert response.json()["logged_by"] == "agent-7"
        clock.advance(timedelta(minutes=1))
    events = [e["data"] for e in await staged(stack["customer"], "csm.interaction.logged.v1")]
    assert [(e["channel"], e["kind"], e["signal"]) for e in events] == [
        ("phone", "call", None),
        ("visit", "visit", None),
        ("phone", "signal", "rude_to_staff"),
        ("email", "email", "cancellation_request"),
    ]
    assert events[0]["occurred_at"] == "2026-11-20T02:00:00Z" and events[2]["sentiment"] == "negative"
    assert "summary" not in events[0], "free text stays here"
    first = (await client.get(base, params={"limit": 3}, headers=auth())).json()
    rest = (
        await client.get(base, params={"limit": 3, "cursor": first["next_cursor"]}, headers=auth())
    ).json()
    assert [i["kind"] for i in first["items"] + rest["items"]] == ["email", "signal", "visit", "call"]
    assert rest["next_cursor"] is None
    signals = (await client.get(base, params={"signals_only": True}, headers=auth())).json()["items"]
    assert [i["signal"] for i in signals] == ["cancellation_request", "rude_to_staff"]
    view = (await client.get(f"/customers/{customer['id']}/360", headers=auth())).json()
    assert [i["kind"] for i in view["recent_interactions"]] == ["email", "signal", "visit", "call"]


@pytest.mark.parametrize(
    ("interaction", "field"),
    [
        ({"channel": "phone", "kind": "signal"}, "signal"),
        ({"channel": "phone", "kind": "call", "occurred_at": "2026-11-23T10:00:00Z"}, "occurred_at"),
        ({"channel": "pigeon", "kind": "call"}, "channel"),
        ({"channel": "phone", "kind": "call", "signal": "bad_mood"}, "signal"),
        ({"channel": "phone", "kind": "call", "sentiment": "furious"}, "sentiment"),
    ],
)
async def test_a_bad_interaction_is_422_naming_the_field(
    customers: tuple[Stack, ManualClock], interaction: dict[str, str], field: str
) -> None:
    stack, _ = customers
    customer = await register(stack)
    response = await stack["customer"].client.post(
        f"/customers/{customer['id']}/interactions", json=interaction, headers=auth()
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == field


async def test_interests_change_as_a_set_with_the_time_and_source_of_each_change(
    customers: tuple[Stack, ManualClock],
) -> None:
    stack, clock = customers
    client = stack["customer"].client
    customer = await register(stack)
    url = f"/customers/{customer['id']}/interests"
    first = await client.put(
        url, json={"interests": ["Tea", "gardening", "tea"], "source": "web profile"}, headers=auth()
    )
    assert [(i["topic"], i["source"]) for i in first.json()] == [
        ("gardening", "web profile"),
        ("tea", "web profile"),
    ]
    clock.advance(timedelta(days=1))
    await client.put(
        url,
        json={"interests": ["tea", "hiking"], "source": "call with agent"},
        headers=auth(subject="agent-2"),
    )
    current = (await client.get(url, headers=auth())).json()
    assert [(i["topic"], i["since"]) for i in current] == [
        ("hiking", "2026-11-24T09:00:00Z"),
        ("tea", "2026-11-23T09:00:00Z"),
    ]
    same = await client.put(url, json={"interests": ["hiking", "tea"], "source": "again"}, headers=auth())
    assert same.status_code == 200
    history = (await client.get(f"{url}/history", headers=auth())).json()["items"]
    assert [(h["topic"], h["added"], h["source"], h["changed_by"]) for h in history] == [
        ("gardening", False, "call with agent", "agent-2"),
        ("hiking", True, "call with agent", "agent-2"),
        ("gardening", True, "web profile", "tester"),
        ("tea", True, "web profile", "tester"),
    ]
    events = [
        e["data"]["interests"] for e in await staged(stack["customer"], "csm.customer.interests_changed.v1")
    ]
    assert events == [["gardening", "tea"], ["hiking", "tea"]], (
        "a change emits the whole set; no change, no event"
    )


async def test_consent_is_per_channel_and_purpose_with_time_source_and_who(
    customers: tuple[Stack, ManualClock],
) -> None:
    stack, clock = customers
    client = stack["customer"].client
    customer = await register(stack)
    base = f"/customers/{customer['id']}/consents"
    assert (
        await client.put(
            f"{base}/email/marketing",
            json={"granted": True, "source": "web form"},
            headers=auth(Role.service, subject="shop"),
        )
    ).status_code == 200
    await client.put(
        f"{base}/sms/service", json={"granted": True, "source": "signed contract"}, headers=auth()
    )
    clock.advance(timedelta(hours=2))
    withdrawn = await client.put(
        f"{base}/email/marketing",
        json={"granted": False, "source": "unsubscribe link"},
        headers=auth(subject="agent-3"),
    )
    assert withdrawn.json() == {
        "channel": "email",
        "purpose": "marketing",
        "granted": False,
        "source": "unsubscribe link",
        "changed_at": "2026-11-23T11:00:00Z",
    }
    await client.put(f"{base}/email/marketing", json={"granted": False, "source": "again"}, headers=auth())
    current = (await client.get(base, headers=auth())).json()
    assert [(c["channel"], c["purpose"], c["granted"]) for c in current] == [
        ("email", "marketing", False),
        ("sms", "service", True),
    ]
    history = (await client.get(f"{base}/history", headers=auth())).json()["items"]
    assert [(h["channel"], h["granted"], h["source"], h["changed_by"]) for h in history] == [
        ("email", False, "unsubscribe link", "agent-3"),
        ("sms", True, "signed contract", "tester"),
        ("email", True, "web form", "shop"),
    ]
    events = [e["data"] for e in await staged(stack["customer"], "csm.customer.consent_changed.v1")]
    assert [(e["channel"], e["purpose"], e["granted"], e["source"]) for e in events] == [
        ("email", "marketing", True, "web form"),
        ("sms", "service", True, "signed contract"),
        ("email", "marketing", False, "unsubscribe link"),
    ]
    bad = await client.put(f"{base}/pigeon/marketing", json={"granted": True, "source": "x"}, headers=auth())
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "channel"
    view = (await client.get(f"/customers/{customer['id']}/360", headers=auth())).json()
    assert [(c["channel"], c["granted"]) for c in view["consents"]] == [("email", False), ("sms", True)]
