"""Playbooks as data: a trigger, conditions on facts, and steps run in order.

A playbook says *when* (an event type, a calendar period, or an announcement), *for whom*
(conditions on the facts of the event and of the customer) and *what* (steps: a message to
the customer, an alert to staff over a webhook, a task for a person, a wait, a stop unless a
condition still holds). This module is pure: it validates definitions, evaluates conditions
and walks the steps; storing, sending and scheduling live elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from services.notify import templates
from shared.events.complaints import ComplaintCategory, ComplaintChannel, Severity, SlaTarget
from shared.events.customer import ContactChannel, CustomerKind, CustomerStatus, Purpose, SalesChannel
from shared.events.segmentation import ChurnRisk, LoyaltyStage, Tier, ValueGroup

Scalar = str | int | float | bool | None
Facts = dict[str, Scalar]

SLUG = r"^[a-z][a-z0-9_]{0,59}$"


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
    "csm.segment.tier_changed.v1": frozenset({
        "event.tier", "event.previous_tier", "event.tier_move", "event.key_account", "event.segment",
        "event.stage", "event.value_group",
    }),
    "csm.segment.risk_changed.v1": frozenset({"event.risk", "event.previous_risk", "event.tier"}),
    "csm.complaint.opened.v1": frozenset({
        "event.tier", "event.category", "event.severity", "event.channel", *COMPLAINT_FACTS,
    }),
    "csm.complaint.resolved.v1": frozenset({"event.tier", "event.category", "event.severity", *COMPLAINT_FACTS}),
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
        given = [name for name in ("one_of", "none_of", "at_least", "at_most") if getattr(self, name) is not None]
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
        keep = {"fact", *(name for name in ("one_of", "none_of", "at_least", "at_most") if getattr(self, name) is not None)}
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


class Content(BaseModel):
    """One language's text of a message: Jinja2 templates."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str = Field(min_length=1, max_length=300)
    body: str = Field(min_length=1, max_length=8000)
    sms: str | None = Field(default=None, max_length=500, description="Short text for SMS; else title and body.")

    @field_validator("title", "body", "sms")
    @classmethod
    def _compiles(cls, source: str | None) -> str | None:
        if source is not None:
            templates.check(source)
        return source


LocaleTag = Annotated[str, Field(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")]
Localised = dict[LocaleTag, Content]


def _needs_a_language(value: dict[str, Content]) -> dict[str, Content]:
    if not value:
        raise ValueError("give the text in at least one language")
    return value


class _Step(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=SLUG, description="Stable: it is part of the idempotency key of what the step sends.")


class _ActionStep(_Step):
    when: tuple[Condition, ...] = Field(default=(), description="Skip this step unless these hold.")


class MessageStep(_ActionStep):
    """A message to the customer on the first channel that can reach them and may."""

    kind: Literal["message"] = "message"
    purpose: Purpose
    channels: tuple[Literal[ContactChannel.email, ContactChannel.sms, ContactChannel.in_app], ...] = Field(
        min_length=1, description="In order of preference."
    )
    urgent: bool = Field(default=False, description="Urgent messages do not wait out quiet hours.")
    template: Localised

    _languages = field_validator("template")(_needs_a_language)

    @field_validator("channels")
    @classmethod
    def _distinct(cls, channels: tuple[ContactChannel, ...]) -> tuple[ContactChannel, ...]:
        if len(set(channels)) != len(channels):
            raise ValueError("a channel appears twice")
        return channels


class AlertStep(_ActionStep):
    """A message to staff systems: a signed webhook to a registered endpoint."""

    kind: Literal["alert"] = "alert"
    webhook: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$", description="The name of a registered webhook.")
    template: Localised

    _languages = field_validator("template")(_needs_a_language)


class StaffRole(StrEnum):
    agent = "agent"
    supervisor = "supervisor"
    manager = "manager"
    admin = "admin"


class Assignment(BaseModel):
    """Who does a task: a named person if the facts name one, else anyone with the role."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    person: Literal["account_manager", "first_owner"] | None = None
    role: StaffRole | Literal["must_act"] = StaffRole.agent


class TaskStep(_ActionStep):
    """Work for a person: a care call, an on-site visit, a review."""

    kind: Literal["task"] = "task"
    task: str = Field(pattern=SLUG, description="The kind of task, e.g. care_call, on_site_visit.")
    title: str = Field(min_length=1, max_length=300, description="A Jinja2 template, in the staff's language.")
    detail: str | None = Field(default=None, max_length=4000)
    assign: Assignment = Assignment()
    due_in: timedelta = Field(default=timedelta(days=1), ge=timedelta(0), le=timedelta(days=400))
    purpose: Purpose = Field(
        default=Purpose.service, description="A marketing task (a sales call) needs the customer's phone consent."
    )

    @field_validator("title", "detail")
    @classmethod
    def _compiles(cls, source: str | None) -> str | None:
        if source is not None:
            templates.check(source)
        return source


class WaitStep(_Step):
    kind: Literal["wait"] = "wait"
    duration: timedelta = Field(gt=timedelta(0), le=timedelta(days=400), description="ISO 8601, e.g. P7D.")


class StopUnlessStep(_Step):
    """End the run here unless the conditions still hold (checked when the step is reached)."""

    kind: Literal["stop_unless"] = "stop_unless"
    conditions: tuple[Condition, ...] = Field(min_length=1)


Step = Annotated[MessageStep | AlertStep | TaskStep | WaitStep | StopUnlessStep, Field(discriminator="kind")]


class EventTrigger(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["event"] = "event"
    event: str

    @field_validator("event")
    @classmethod
    def _known(cls, event: str) -> str:
        if event not in TRIGGER_EVENTS:
            raise ValueError(f"not an event a playbook can start from; one of {', '.join(TRIGGER_EVENTS)}")
        return event


class Period(StrEnum):
    month = "month"
    quarter = "quarter"
    year = "year"


class ScheduleTrigger(BaseModel):
    """Once per calendar period, for every customer the conditions select."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["schedule"] = "schedule"
    every: Period


class AnnouncementTrigger(BaseModel):
    """An announcement posted to /announcements, for each customer whose interests match it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["announcement"] = "announcement"


Trigger = Annotated[EventTrigger | ScheduleTrigger | AnnouncementTrigger, Field(discriminator="kind")]


def available_facts(trigger: EventTrigger | ScheduleTrigger | AnnouncementTrigger) -> frozenset[str]:
    if isinstance(trigger, EventTrigger):
        return TRIGGER_EVENTS[trigger.event] | CUSTOMER_FACTS
    if isinstance(trigger, AnnouncementTrigger):
        return CUSTOMER_FACTS | {"announcement.topic"}
    return CUSTOMER_FACTS


class PlaybookDefinition(BaseModel):
    """What an operator writes: a playbook's trigger, conditions and steps."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    enabled: bool = True
    trigger: Trigger
    conditions: tuple[Condition, ...] = ()
    steps: tuple[Step, ...] = Field(min_length=1, max_length=30)

    @model_validator(mode="after")
    def _coherent(self) -> PlaybookDefinition:
        ids = [step.id for step in self.steps]
        duplicates = sorted({step_id for step_id in ids if ids.count(step_id) > 1})
        if duplicates:
            raise ValueError(f"step ids must be distinct; repeated: {', '.join(duplicates)}")
        facts = available_facts(self.trigger)
        for condition in self.used_conditions():
            if condition.fact not in facts:
                raise ValueError(f"the fact {condition.fact} is not known for this trigger")
        if isinstance(self.trigger, ScheduleTrigger | AnnouncementTrigger):
            for step in self.steps:
                if isinstance(step, TaskStep) and step.assign.role == "must_act":
                    raise ValueError(f"step {step.id}: must_act comes from an escalation event")
        return self

    def used_conditions(self) -> list[Condition]:
        found = list(self.conditions)
        for step in self.steps:
            if isinstance(step, StopUnlessStep):
                found.extend(step.conditions)
            elif isinstance(step, _ActionStep):
                found.extend(step.when)
        return found


def matches(definition: PlaybookDefinition, facts: Facts) -> bool:
    return definition.enabled and holds(definition.conditions, facts)


ActionStep = MessageStep | AlertStep | TaskStep


@dataclass
class Progress:
    """What walking a playbook from one step produced, and where it goes on."""

    actions: list[tuple[int, ActionStep]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    resume_step: int | None = None
    resume_at: datetime | None = None
    stopped_at: str | None = None

    @property
    def finished(self) -> bool:
        return self.resume_step is None


def advance(definition: PlaybookDefinition, facts: Facts, *, from_step: int, now: datetime) -> Progress:
    """Run steps from ``from_step`` until a wait (resume later), a stop, or the end."""
    progress = Progress()
    index = from_step
    steps = definition.steps
    while index < len(steps):
        step = steps[index]
        if isinstance(step, WaitStep):
            progress.resume_step, progress.resume_at = index + 1, now + step.duration
            if progress.resume_step == len(steps):
                progress.resume_step = progress.resume_at = None
            return progress
        if isinstance(step, StopUnlessStep):
            if not holds(step.conditions, facts):
                progress.stopped_at = step.id
                return progress
        elif step.when and not holds(step.when, facts):
            progress.skipped.append((step.id, "its conditions do not hold"))
        else:
            progress.actions.append((index, step))
        index += 1
    return progress


@dataclass(frozen=True)
class PlannedStep:
    at: datetime
    step: ActionStep


@dataclass
class Plan:
    steps: list[PlannedStep]
    skipped: list[tuple[str, str]]
    stopped_at: str | None


def simulate(definition: PlaybookDefinition, facts: Facts, *, now: datetime) -> Plan:
    """Every step a run would take if the facts stayed as they are: the dry run."""
    planned: list[PlannedStep] = []
    skipped: list[tuple[str, str]] = []
    at, index = now, 0
    while True:
        progress = advance(definition, facts, from_step=index, now=at)
        planned.extend(PlannedStep(at, step) for _, step in progress.actions)
        skipped.extend(progress.skipped)
        if progress.resume_step is None or progress.resume_at is None:
            return Plan(planned, skipped, progress.stopped_at)
        at, index = progress.resume_at, progress.resume_step


def idempotency_key(cause: str, playbook: str, step: str) -> str:
    """The key of what one step sends for one cause: the same cause never sends twice."""
    return f"{cause}:{playbook}:{step}"


def period_label(moment_local: datetime, every: Period) -> str:
    """The calendar period a local moment falls in: 2026-11, 2026-Q4, 2026."""
    if every is Period.month:
        return f"{moment_local.year}-{moment_local.month:02d}"
    if every is Period.quarter:
        return f"{moment_local.year}-Q{(moment_local.month - 1) // 3 + 1}"
    return str(moment_local.year)


def period_start(moment_local: datetime, every: Period) -> datetime:
    """The first instant of the period ``moment_local`` falls in, in the same time zone."""
    month = {Period.month: moment_local.month, Period.quarter: (moment_local.month - 1) // 3 * 3 + 1}.get(every, 1)
    return moment_local.replace(month=month, day=1, hour=0, minute=0, second=0, microsecond=0)


def tier_move(previous: str | None, current: str) -> str:
    if previous is None:
        return "new"
    order = [tier.value for tier in Tier]
    if previous == current:
        return "same"
    return "up" if order.index(current) < order.index(previous) else "down"


def as_jsonable(definition: PlaybookDefinition) -> dict[str, Any]:
    return definition.model_dump(mode="json", exclude_defaults=False)
