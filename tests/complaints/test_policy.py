"""The pure parts around the clock: the workflow table, the policy's lookups, authority and ladder,
and the analytics figures."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.complaints import analytics
from services.complaints.policy import ComplaintPolicy, default_policy
from services.complaints.workflow import OPEN, TRANSITIONS, IllegalTransition, Status, check
from shared.events.complaints import Severity
from shared.events.segmentation import Tier
from shared.roles import Role


def test_the_workflow_is_the_practices_chain_with_reopen() -> None:
    chain = [
        Status.new,
        Status.acknowledged,
        Status.in_progress,
        Status.waiting_on_customer,
        Status.in_progress,
        Status.resolved,
        Status.closed,
        Status.reopened,
        Status.acknowledged,
    ]
    for current, wanted in itertools.pairwise(chain):
        check(current, wanted)
    assert set(TRANSITIONS) == set(Status)
    with pytest.raises(IllegalTransition) as refused:
        check(Status.closed, Status.in_progress)
    assert refused.value.allowed == (Status.reopened,)
    assert "from closed it may become: reopened" in str(refused.value)


@given(st.sampled_from(list(Status)), st.sampled_from(list(Status)))
def test_a_transition_is_allowed_exactly_when_the_table_says_so(current: Status, wanted: Status) -> None:
    try:
        check(current, wanted)
        allowed = True
    except IllegalTransition:
        allowed = False
    assert allowed == (wanted in TRANSITIONS[current])
    # Nothing leaves a finished complaint except a reopen.
    if current not in OPEN and allowed:
        assert wanted in (Status.closed, Status.reopened)


def test_the_most_specific_target_rule_wins() -> None:
    policy = default_policy()
    assert policy.target_for(Tier.gold, Severity.critical).first_response == timedelta(hours=1)
    assert policy.target_for(Tier.gold, Severity.low).first_response == timedelta(hours=2)
    assert policy.target_for(None, Severity.critical).calendar == "24x7"
    assert policy.target_for(None, Severity.low).calendar == "business_hours"


def test_compensation_authority_follows_the_role_limits() -> None:
    policy = default_policy()
    assert policy.may_grant(Role.agent, Decimal("200")) and not policy.may_grant(
        Role.agent, Decimal("200.01")
    )
    assert policy.may_grant(Role.supervisor, Decimal("1000")) and not policy.may_grant(
        Role.supervisor, Decimal("1001")
    )
    assert policy.may_grant(Role.manager, Decimal("1000000"))
    assert not policy.may_grant(Role.service, Decimal("0.01"))
    assert [policy.approver_for(Decimal(a)) for a in ("50", "500", "5000")] == [
        Role.agent,
        Role.supervisor,
        Role.manager,
    ]


def test_the_ladder_skips_the_key_account_rung_for_other_customers() -> None:
    policy = default_policy()
    assert policy.next_level(0, key_account=False) == 1
    assert policy.next_level(2, key_account=False) is None
    assert policy.next_level(2, key_account=True) == 3
    assert policy.next_level(3, key_account=True) is None


def test_a_poor_answer_is_policy() -> None:
    policy = default_policy()
    assert policy.is_poor(2, None) and not policy.is_poor(3, 0)
    strict = ComplaintPolicy.model_validate(default_policy().model_dump() | {"poor_csat": 3, "poor_nps": 6})
    assert strict.is_poor(3, None) and strict.is_poor(5, 6) and not strict.is_poor(4, 7)


def test_a_policy_survives_json_and_back() -> None:
    policy = default_policy("EUR")
    assert ComplaintPolicy.model_validate_json(policy.model_dump_json()) == policy
    assert policy.currency == "EUR"


def test_a_policys_calendar_is_parsed_once_and_stays_out_of_its_document() -> None:
    policy = ComplaintPolicy.model_validate(default_policy().model_dump(mode="json"))
    hours = policy.calendar("business_hours")
    # Every promise reads the calendar: the parsed one is kept with the (immutable) policy.
    assert policy.calendar("business_hours") is hours and hours.time_zone == "Asia/Shanghai"
    assert "built" not in policy.calendars["business_hours"].model_dump()
    assert policy == default_policy()


T = datetime(2026, 11, 2, 9, tzinfo=UTC)


def fact(
    category: str,
    *,
    day: int = 0,
    tier: str | None = "gold",
    cause: str | None = None,
    fcr: bool | None = None,
    reopened: bool = False,
) -> analytics.ComplaintFact:
    return analytics.ComplaintFact(
        opened_at=T + timedelta(days=day),
        category=category,
        channel="phone",
        tier=tier,
        root_cause=cause,
        first_contact_resolution=fcr,
        ever_resolved=fcr is not None or reopened,
        reopened=reopened,
    )


def clock(
    target: str, hours_to_meet: float | None, *, due_hours: float = 2, breached: bool = False, cycle: int = 1
) -> analytics.ClockFact:
    return analytics.ClockFact(
        target=target,
        cycle=cycle,
        opened_at=T,
        due_at=T + timedelta(hours=due_hours),
        met_at=None if hours_to_meet is None else T + timedelta(hours=hours_to_meet),
        breached_at=T + timedelta(hours=due_hours) if breached else None,
    )


def test_the_figures_management_reads() -> None:
    facts = [
        fact("delivery", cause="carrier_delay", fcr=True),
        fact("delivery", day=1, cause="carrier_delay", fcr=False, reopened=True),
        fact("billing", day=1, tier=None, cause="billing_error", fcr=True),
        fact("billing", day=3),
    ]
    clocks = [
        clock("first_response", 1),
        clock("first_response", 3, breached=True),
        clock("first_response", 0.5),
        clock("first_response", None),
        clock("resolution", 10, due_hours=48),
        clock("resolution", 30, due_hours=48),
        clock("resolution", 1, due_hours=48, cycle=2),
    ]
    figures = analytics.report(
        facts, clocks, [(2, 3, True), (5, 10, False), (4, None, False)], since=T, until=T + timedelta(days=4)
    )
    volume = figures["volume"]
    assert volume["total"] == 4 and volume["by_category"] == {"delivery": 2, "billing": 2}  # type: ignore[index]
    assert volume["by_tier"] == {"gold": 3, "unknown": 1}  # type: ignore[index]
    assert [p["count"] for p in volume["trend"]["points"]] == [1, 2, 0, 1, 0]  # type: ignore[index]
    assert figures["sla_attainment"] == {
        "overall": 0.8333,
        "by_target": {
            "first_response": {"kept": 2, "decided": 3, "rate": 0.6667},
            "resolution": {"kept": 3, "decided": 3, "rate": 1.0},
        },
    }
    assert figures["first_response_time"] == {"count": 3, "median_hours": 1.0, "p90_hours": 3.0}
    assert figures["resolution_time"] == {"count": 2, "median_hours": 10.0, "p90_hours": 30.0}
    assert figures["first_contact_resolution_rate"] == 0.6667
    assert figures["reopen_rate"] == 0.3333
    top = figures["root_causes"][0]  # type: ignore[index]
    assert top == {
        "root_cause": "carrier_delay",
        "count": 2,
        "share": 0.6667,
        "recurring": True,
        "categories": {"delivery": 2},
    }
    assert figures["satisfaction"] == {"answers": 3, "csat_mean": 3.667, "poor_rate": 0.3333, "nps": 0.0}


def test_a_long_window_trends_by_week() -> None:
    figures = analytics.volume(
        [fact("delivery"), fact("delivery", day=8)], since=T, until=T + timedelta(days=90)
    )
    trend = figures["trend"]
    assert trend["bucket"] == "week"  # type: ignore[index]
    assert trend["points"][0] == {"start": "2026-11-02", "count": 1, "by_category": {"delivery": 1}}  # type: ignore[index]


def test_percentiles_are_nearest_rank() -> None:
    assert analytics.percentile([], 0.9) is None
    assert analytics.percentile([5.0], 0.9) == 5.0
    assert analytics.percentile([float(n) for n in range(1, 11)], 0.9) == 9.0
    assert analytics.percentile([float(n) for n in range(1, 11)], 0.5) == 5.0
