"""Playbooks as data: validation, conditions, and walking the steps (pure, no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from services.notify.conditions import (
    COMPLAINT_FACTS,
    FACTS,
    TRIGGER_EVENTS,
    Condition,
    FactKind,
    holds,
    tier_move,
)
from services.notify.consumers import complaint_material
from services.notify.defaults import default_playbooks
from services.notify.facts import event_facts
from services.notify.playbooks import (
    Period,
    PlaybookDefinition,
    advance,
    idempotency_key,
    period_label,
    period_start,
    simulate,
)
from shared import templates
from shared.events import REGISTRY
from tests.shared.event_examples import FIXED_ID, example

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def message(step_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "message",
        "id": step_id,
        "purpose": "service",
        "channels": ["email"],
        "template": {"zh": {"title": "标题", "body": "正文"}},
        **extra,
    }


def playbook(*steps: dict[str, Any], **extra: Any) -> PlaybookDefinition:
    return PlaybookDefinition.model_validate(
        {
            "name": "test",
            "trigger": {"kind": "event", "event": "csm.purchase.recorded.v1"},
            "steps": list(steps),
            **extra,
        }
    )


def test_every_shipped_playbook_reads_back_the_same_from_its_json() -> None:
    for key, definition in default_playbooks().items():
        assert PlaybookDefinition.model_validate(definition.model_dump(mode="json")) == definition, key


@pytest.mark.parametrize(
    ("definition", "complaint"),
    [
        ({"steps": [message("a"), message("a")]}, "step ids must be distinct"),
        (
            {"steps": [message("a")], "conditions": [{"fact": "event.mood", "equals": "happy"}]},
            "unknown fact",
        ),
        (
            {"steps": [message("a")], "conditions": [{"fact": "event.poor", "equals": True}]},
            "not known for this trigger",
        ),
        (
            {"steps": [message("a")], "conditions": [{"fact": "customer.tier", "one_of": ["diamond"]}]},
            "not a value",
        ),
        (
            {
                "steps": [message("a")],
                "conditions": [{"fact": "customer.tier", "equals": "gold", "none_of": ["iron"]}],
            },
            "exactly one",
        ),
        (
            {"steps": [message("a")], "conditions": [{"fact": "customer.tier", "at_least": 2}]},
            "needs a number fact",
        ),
        ({"steps": [message("a", template={"zh": {"title": "{{ oops", "body": "b"}})]}, "template error"),
        ({"steps": [message("a", template={})]}, "at least one language"),
        ({"steps": [message("a", channels=["email", "email"])]}, "appears twice"),
        ({"steps": [message("a", channels=["phone"])]}, "steps.0.message.channels.0"),
        ({"steps": [{"kind": "wait", "id": "w", "duration": "PT0S"}]}, "greater than"),
        ({"steps": [message("a", colour="red")]}, "Extra inputs are not permitted"),
        ({"steps": []}, "at least 1 item"),
        ({"steps": [message("Bad Id")]}, "should match pattern"),
    ],
)
def test_a_bad_playbook_is_refused_saying_what_is_wrong(definition: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ValidationError) as refused:
        playbook(*definition.pop("steps"), **definition)
    assert complaint in str(refused.value)


def test_a_task_for_the_level_that_must_act_needs_an_escalation() -> None:
    with pytest.raises(ValidationError, match="must_act comes from an escalation event"):
        PlaybookDefinition.model_validate(
            {
                "name": "visits",
                "trigger": {"kind": "schedule", "every": "quarter"},
                "steps": [
                    {"kind": "task", "id": "t", "task": "visit", "title": "x", "assign": {"role": "must_act"}}
                ],
            }
        )


values = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.sampled_from(["gold", "iron", "x"]))


@given(st.sampled_from(sorted(FACTS)), values, st.lists(values, max_size=4))
def test_one_of_and_none_of_are_each_others_opposite(fact: str, value: Any, choices: list[Any]) -> None:
    spec = FACTS[fact]
    if spec.kind is FactKind.choice:
        choices = [spec.values[0], *(c for c in choices if c in spec.values)]
    elif spec.kind is FactKind.flag:
        choices = [c for c in choices if isinstance(c, bool)] or [True]
    facts = {fact: value}
    inside = Condition(fact=fact, one_of=tuple(choices))
    outside = Condition(fact=fact, none_of=tuple(choices))
    assert inside.holds(facts) != outside.holds(facts)
    assert inside.holds(facts) == (value in choices)


@given(st.floats(-1e6, 1e6) | st.none() | st.booleans(), st.floats(-1e6, 1e6))
def test_at_least_and_at_most_compare_numbers_only(value: Any, bound: float) -> None:
    facts = {"event.amount": value}
    is_number = isinstance(value, float)
    assert Condition(fact="event.amount", at_least=bound).holds(facts) == (is_number and value >= bound)
    assert Condition(fact="event.amount", at_most=bound).holds(facts) == (is_number and value <= bound)


def test_all_conditions_must_hold() -> None:
    conditions = [
        Condition(fact="event.tier", equals="gold"),
        Condition(fact="event.first_purchase", equals=True),
    ]
    assert holds(conditions, {"event.tier": "gold", "event.first_purchase": True})
    assert not holds(conditions, {"event.tier": "gold", "event.first_purchase": False})
    assert not holds(conditions, {})
    assert holds([], {})


def test_steps_run_until_a_wait_and_resume_from_the_next_step() -> None:
    definition = playbook(
        message("first"),
        {"kind": "wait", "id": "week", "duration": "P7D"},
        {
            "kind": "stop_unless",
            "id": "still",
            "conditions": [{"fact": "customer.status", "none_of": ["lost"]}],
        },
        message("skipped", when=[{"fact": "customer.tier", "equals": "gold"}]),
        message("last"),
    )
    first = advance(definition, {}, from_step=0, now=NOW)
    assert [step.id for _, step in first.actions] == ["first"]
    assert (first.resume_step, first.resume_at) == (2, NOW + timedelta(days=7))
    later = advance(definition, {"customer.status": "active"}, from_step=2, now=NOW + timedelta(days=7))
    assert [step.id for _, step in later.actions] == ["last"]
    assert later.skipped == [("skipped", "its conditions do not hold")] and later.finished
    stopped = advance(definition, {"customer.status": "lost"}, from_step=2, now=NOW)
    assert (stopped.actions, stopped.stopped_at, stopped.finished) == ([], "still", True)


def test_a_trailing_wait_ends_the_run() -> None:
    progress = advance(
        playbook(message("a"), {"kind": "wait", "id": "w", "duration": "P1D"}), {}, from_step=0, now=NOW
    )
    assert progress.finished and progress.resume_at is None


def test_the_dry_run_plans_every_step_at_its_time() -> None:
    plan = simulate(default_playbooks()["first_purchase_care"], {"customer.status": "active"}, now=NOW)
    assert [(p.step.id, p.at) for p in plan.steps] == [
        ("thanks", NOW),
        ("care_call", NOW + timedelta(days=7)),
    ]
    assert simulate(
        default_playbooks()["first_purchase_care"], {"customer.status": "lost"}, now=NOW
    ).stopped_at == ("still_a_customer")


@pytest.mark.parametrize(
    ("moment", "every", "label", "start"),
    [
        (datetime(2026, 11, 23, 10), "quarter", "2026-Q4", datetime(2026, 10, 1)),
        (datetime(2027, 1, 1), "quarter", "2027-Q1", datetime(2027, 1, 1)),
        (datetime(2026, 6, 30, 23, 59), "quarter", "2026-Q2", datetime(2026, 4, 1)),
        (datetime(2026, 2, 14), "month", "2026-02", datetime(2026, 2, 1)),
        (datetime(2026, 7, 4), "year", "2026", datetime(2026, 1, 1)),
    ],
)
def test_calendar_periods(moment: datetime, every: str, label: str, start: datetime) -> None:
    assert period_label(moment, Period(every)) == label
    assert period_start(moment, Period(every)) == start


def test_tier_moves() -> None:
    assert [
        tier_move(None, "gold"),
        tier_move("iron", "gold"),
        tier_move("gold", "iron"),
        tier_move("gold", "gold"),
    ] == ["new", "up", "down", "same"]


def test_the_idempotency_key_is_cause_playbook_and_step() -> None:
    assert idempotency_key("e1", "survey", "ask") == "e1:survey:ask"
    assert idempotency_key("e1", "survey", "ask") != idempotency_key("e2", "survey", "ask")


def _context(language: str, event_type: str) -> dict[str, Any]:
    event = example(event_type)
    material = complaint_material(event, None) if hasattr(event, "complaint_id") else {}
    return {
        "customer": {"name": "Li Na", "tier": "gold", "key_account": False},
        "event": event.model_dump(mode="json"),
        "complaint": material,
        "announcement": {"id": "a", "topic": "tea", "title": "News", "body": "Body"},
        "period": "2026-Q4",
        "offer": "an offer",
        "links": {"survey": "https://s/1", "preferences": "https://p/1"},
        "language": language,
        "time_zone": "Asia/Shanghai",
    }


def test_every_template_of_every_shipped_playbook_renders_in_both_languages() -> None:
    for key, definition in default_playbooks().items():
        trigger = definition.trigger
        # Calendar and announcement playbooks have no event; any example stands in for it.
        event_type = getattr(trigger, "event", "csm.segment.tier_changed.v1")
        for step in definition.steps:
            for tag, content in getattr(step, "template", {}).items():
                context = _context(templates.language_of(tag), event_type)
                if event_type == "csm.segment.tier_changed.v1":
                    context["event"]["tier"] = "platinum"  # the welcome names gold and platinum only
                for source in (content.title, content.body, content.sms):
                    if source:
                        rendered = templates.render(source, context)
                        assert rendered and "None" not in rendered, (key, step.id, tag, rendered)
            for source in (getattr(step, "title", None), getattr(step, "detail", None)):
                if isinstance(source, str):
                    assert templates.render(source, _context("zh", event_type)), (key, step.id)


def test_the_facts_of_an_event_are_the_ones_its_trigger_promises() -> None:
    for event_type, promised in TRIGGER_EVENTS.items():
        facts = event_facts(example(event_type, FIXED_ID))
        assert set(facts) == set(promised) - COMPLAINT_FACTS, event_type
        assert event_type in REGISTRY
