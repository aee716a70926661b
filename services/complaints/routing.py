"""The routing policy as data: which team a new complaint goes to, by category, tier, language and
channel. Pure.

Rules are tried in order and the first that matches wins; a rule's empty condition matches
anything. A rule may also ask for a skill, which the person picked in the team must have. Version 0,
the shipped default, has no rules: complaints stay with whoever received them, as before routing.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from shared.events.complaints import ComplaintCategory, ComplaintChannel
from shared.events.segmentation import Tier

TeamName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,59}$")]
LanguageTag = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")]
RuleName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]
Skill = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]


class RoutingRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: RuleName
    category: ComplaintCategory | None = None
    tier: Tier | None = None
    # Matched on the primary tag: a rule for "zh" takes complaints in "zh-CN" and "zh-TW".
    language: LanguageTag | None = None
    channel: ComplaintChannel | None = None
    team: TeamName
    # A skill the person picked must have; by default anyone in the team will do.
    skill: Skill | None = None

    def matches(self, *, category: str, tier: str | None, language: str | None, channel: str) -> bool:
        return (
            (self.category is None or self.category.value == category)
            and (self.tier is None or self.tier.value == tier)
            and (self.channel is None or self.channel.value == channel)
            and (
                self.language is None
                or (language is not None and _primary(self.language) == _primary(language))
            )
        )


class RoutingPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: list[RoutingRule] = Field(default_factory=list, max_length=200)
    # Where a complaint goes when its rule's team has nobody on duty with room; none: it stays unassigned.
    fallback_team: TeamName | None = None

    @field_validator("rules")
    @classmethod
    def _distinct(cls, rules: list[RoutingRule]) -> list[RoutingRule]:
        names = [rule.name for rule in rules]
        if len(set(names)) != len(names):
            raise ValueError("rules need distinct names")
        return rules

    def rule_for(
        self, *, category: str, tier: str | None, language: str | None, channel: str
    ) -> RoutingRule | None:
        """The first rule that matches, or None."""
        for rule in self.rules:
            if rule.matches(category=category, tier=tier, language=language, channel=channel):
                return rule
        return None

    def teams(self) -> list[tuple[str, str]]:
        """Every team the policy names, with the field that names it (for a 422 that points at it)."""
        named = [(f"rules.{index}.team", rule.team) for index, rule in enumerate(self.rules)]
        if self.fallback_team is not None:
            named.append(("fallback_team", self.fallback_team))
        return named


def _primary(tag: str) -> str:
    return tag.split("-")[0].lower()


DEFAULT_ROUTING = RoutingPolicy()
