"""The vocabulary of playbook conditions: the facts there are, which trigger provides which, and
the test of one fact. Pure: plain values in, plain values out."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from shared.events.complaints import ComplaintCategory, ComplaintChannel, Severity, SlaTarget
from shared.events.customer import CustomerKind, CustomerStatus, SalesChannel
from shared.events.segmentation import ChurnRisk, LoyaltyStage, MoveCause, Tier, ValueGroup

Scalar = str | int | float | bool | None
Facts = dict[str, Scalar]


class FactKind(StrEnum):
    choice = "choice"
    flag = "flag"
    number = "number"
    text = "text"


@dataclass(frozen=True)
class FactSpec:
    kind: FactKind
    description: str
    values: tuple[str, ...] = ()


def _choice(description: str, values: type[StrEnum] | tuple[str, ...]) -> FactSpec:
    names = tuple(v.value for v in values) if isinstance(values, type) else values
    return FactSpec(FactKind.choice, description, names)


TIER_MOVES = ("up", "down", "same", "new")
COMPLAINT_STATES = ("open", "resolved", "reopened")
ANY_CHANNEL = tuple(sorted({*(c.value for c in SalesChannel), *(c.value for c in ComplaintChannel)}))

# Every fact a condition may name. ``event.*`` facts come from the triggering event,
# ``customer.*`` from notify's projection of the customer as it is when the step runs,
# ``complaint.*`` from its projection of the complaint the event is about.
FACTS: dict[str, FactSpec] = {
    "event.tier": _choice("the tier the event states", Tier),
    "event.previous_tier": _choice("the tier before the change", Tier),
    "event.tier_move": _choice("up, down, same or new (no previous tier)", TIER_MOVES),
    "event.key_account": FactSpec(FactKind.flag, "the event says the customer is a key account"),
    "event.segment": FactSpec(FactKind.text, "the segment the event states"),
    "event.stage": _choice("the loyalty stage the event states", LoyaltyStage),
    "event.value_group": _choice("the RFM value group the event states", ValueGroup),
    "event.risk": _choice("the churn risk the event states", ChurnRisk),
    "event.previous_risk": _choice("the churn risk before the change", ChurnRisk),
    "event.cause": _choice(
        "what moved the customer: customer_event, recompute, policy, imported, manual or analysis_date",
        MoveCause,
    ),
    "event.first_purchase": FactSpec(FactKind.flag, "the purchase is the customer's first"),
    "event.channel": _choice("the channel of the purchase or complaint", ANY_CHANNEL),
    "event.amount": FactSpec(FactKind.number, "the purchase amount"),
    "event.category": _choice("the complaint category", ComplaintCategory),
    "event.severity": _choice("the complaint severity", Severity),
    "event.sla_target": _choice("the SLA promise that was breached", SlaTarget),
    "event.escalation_level": FactSpec(FactKind.number, "the escalation level (0 = first line)"),
    "event.poor": FactSpec(FactKind.flag, "the survey answer counts as poor"),
    "event.csat": FactSpec(FactKind.number, "the survey's satisfaction score, 1 to 5"),
    "announcement.topic": FactSpec(FactKind.text, "the announcement's topic"),
    "customer.known": FactSpec(FactKind.flag, "notify has seen the customer's profile"),
    "customer.kind": _choice("individual, business or retailer", CustomerKind),
    "customer.status": _choice("the customer's status", CustomerStatus),
    "customer.tier": _choice("the customer's current tier", Tier),
    "customer.key_account": FactSpec(FactKind.flag, "the customer is a key account now"),
    "customer.segment": FactSpec(FactKind.text, "the customer's current segment"),
    "customer.stage": _choice("the customer's current loyalty stage", LoyaltyStage),
    "customer.risk": _choice("the customer's current churn risk", ChurnRisk),
    "customer.region": FactSpec(FactKind.text, "the customer's region"),
    "complaint.status": _choice("open, resolved or reopened, as notify last heard", COMPLAINT_STATES),
    "complaint.category": _choice("the complaint's category", ComplaintCategory),
}

CUSTOMER_FACTS = frozenset(name for name in FACTS if name.startswith("customer."))
COMPLAINT_FACTS = frozenset(name for name in FACTS if name.startswith("complaint."))

# The event types a playbook may start from, and the event facts each one provides.
TRIGGER_EVENTS: dict[str, frozenset[str]] = {
    "csm.purchase.recorded.v1": frozenset({"event.first_purchase", "event.channel", "event.amount"}),
    "csm.segment.tier_changed.v1": frozenset(
        {
            "event.tier",
            "event.previous_tier",
            "event.tier_move",
            "event.key_account",
            "event.segment",
            "event.stage",
            "event.value_group",
            "event.cause",
        }
    ),
    "csm.segment.risk_changed.v1": frozenset(
        {"event.risk", "event.previous_risk", "event.tier", "event.cause"}
    ),
    "csm.complaint.opened.v1": frozenset(
        {
            "event.tier",
            "event.category",
            "event.severity",
            "event.channel",
            *COMPLAINT_FACTS,
        }
    ),
    "csm.complaint.resolved.v1": frozenset(
        {"event.tier", "event.category", "event.severity", *COMPLAINT_FACTS}
    ),
    "csm.complaint.reopened.v1": frozenset(COMPLAINT_FACTS),
    "csm.complaint.escalated.v1": frozenset({"event.escalation_level", *COMPLAINT_FACTS}),
    "csm.complaint.sla_breached.v1": frozenset({"event.sla_target", "event.tier", *COMPLAINT_FACTS}),
    "csm.complaint.survey_answered.v1": frozenset({"event.poor", "event.csat", *COMPLAINT_FACTS}),
    "csm.customer.registered.v1": frozenset(),
}


class Condition(BaseModel):
    """One test of one fact; exactly one of the operators is given."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fact: str = Field(description="A fact name, e.g. `event.tier` or `customer.risk`.")
    equals: Scalar = None
    one_of: tuple[Scalar, ...] | None = None
    none_of: tuple[Scalar, ...] | None = None
    at_least: float | None = None
    at_most: float | None = None

    @field_validator("fact")
    @classmethod
    def _known_fact(cls, fact: str) -> str:
        if fact not in FACTS:
            raise ValueError(f"unknown fact {fact!r}; known facts: {', '.join(FACTS)}")
        return fact

    @model_validator(mode="after")
    def _one_operator_that_fits_the_fact(self) -> Condition:
        given = [
            name for name in ("one_of", "none_of", "at_least", "at_most") if getattr(self, name) is not None
        ]
        if "equals" in self.model_fields_set:
            given.append("equals")
        if len(given) != 1:
            raise ValueError("give exactly one of equals, one_of, none_of, at_least, at_most")
        spec = FACTS[self.fact]
        operator = given[0]
        if operator in ("at_least", "at_most") and spec.kind is not FactKind.number:
            raise ValueError(f"{operator} needs a number fact; {self.fact} is a {spec.kind.value}")
        values: tuple[Scalar, ...] = ()
        if operator == "equals":
            values = (self.equals,)
        elif operator in ("one_of", "none_of"):
            values = getattr(self, operator)
        for value in values:
            if value is None:
                continue
            if spec.kind is FactKind.choice and value not in spec.values:
                raise ValueError(f"{value!r} is not a value of {self.fact}: one of {', '.join(spec.values)}")
            if spec.kind is FactKind.flag and not isinstance(value, bool):
                raise ValueError(f"{self.fact} is true or false")
        return self

    @model_serializer(mode="wrap")
    def _only_the_operator_given(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Written back exactly as an operator would write it, so a saved playbook reads back the same.
        dumped: dict[str, Any] = handler(self)
        keep = {
            "fact",
            *(
                name
                for name in ("one_of", "none_of", "at_least", "at_most")
                if getattr(self, name) is not None
            ),
        }
        if "equals" in self.model_fields_set:
            keep.add("equals")
        return {name: value for name, value in dumped.items() if name in keep}

    def holds(self, facts: Facts) -> bool:
        value = facts.get(self.fact)
        if "equals" in self.model_fields_set:
            return value == self.equals
        if self.one_of is not None:
            return value in self.one_of
        if self.none_of is not None:
            return value not in self.none_of
        if not isinstance(value, int | float) or isinstance(value, bool):
            return False
        if self.at_least is not None:
            return value >= self.at_least
        return self.at_most is not None and value <= self.at_most


def holds(conditions: tuple[Condition, ...] | list[Condition], facts: Facts) -> bool:
    return all(condition.holds(facts) for condition in conditions)


def tier_move(previous: str | None, current: str) -> str:
    if previous is None:
        return "new"
    order = [tier.value for tier in Tier]
    if previous == current:
        return "same"
    return "up" if order.index(current) < order.index(previous) else "down"
