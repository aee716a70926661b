"""The routing policy's rules: first match wins, empty conditions match anything, languages match on
the primary tag. Pure."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.complaints.routing import DEFAULT_ROUTING, RoutingPolicy

POLICY = RoutingPolicy.model_validate(
    {
        "rules": [
            {"name": "platinum", "tier": "platinum", "team": "vip"},
            {"name": "english billing", "category": "billing", "language": "en", "team": "billing-en"},
            {"name": "billing", "category": "billing", "team": "billing", "skill": "refunds"},
            {"name": "chat", "channel": "chat", "team": "chat"},
        ],
        "fallback_team": "front-desk",
    }
)


def rule(
    category: str = "delivery", tier: str | None = None, language: str | None = None, channel: str = "phone"
) -> str | None:
    found = POLICY.rule_for(category=category, tier=tier, language=language, channel=channel)
    return found.name if found else None


def test_the_first_matching_rule_wins() -> None:
    assert rule("billing", tier="platinum", language="en") == "platinum"
    assert rule("billing", tier="gold", language="en") == "english billing"
    assert rule("billing", tier="gold", language="zh-CN", channel="chat") == "billing"
    assert rule("delivery", channel="chat") == "chat"
    assert rule("delivery") is None


def test_languages_match_on_the_primary_tag_and_an_unknown_language_matches_no_language_rule() -> None:
    assert rule("billing", language="EN-gb") == "english billing"
    assert rule("billing", language=None) == "billing"


def test_the_shipped_default_routes_nothing() -> None:
    assert DEFAULT_ROUTING.rule_for(category="billing", tier="gold", language="zh", channel="web") is None


def test_the_teams_a_policy_names_point_at_their_fields() -> None:
    assert POLICY.teams()[1] == ("rules.1.team", "billing-en")
    assert POLICY.teams()[-1] == ("fallback_team", "front-desk")


def test_rules_need_distinct_names_and_known_conditions() -> None:
    with pytest.raises(ValidationError, match="distinct names"):
        RoutingPolicy.model_validate({"rules": [{"name": "a", "team": "x"}, {"name": "a", "team": "y"}]})
    with pytest.raises(ValidationError):
        RoutingPolicy.model_validate({"rules": [{"name": "a", "team": "x", "tier": "diamond"}]})
