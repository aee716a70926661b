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
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from services.notify.conditions import CUSTOMER_FACTS, TRIGGER_EVENTS, Condition, Facts, holds
from shared import templates
from shared.events.customer import ContactChannel, Purpose

SLUG = r"^[a-z][a-z0-9_]{0,59}$"


class Content(BaseModel):
    """One language's text of a message: Jinja2 templates."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str = Field(min_length=1, max_length=300)
    body: str = Field(min_length=1, max_length=8000)
    sms: str | None = Field(
        default=None, max_length=500, description="Short text for SMS; else title and body."
    )

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

    id: str = Field(
        pattern=SLUG, description="Stable: it is part of the idempotency key of what the step sends."
    )


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
    webhook: str = Field(
        pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$", description="The name of a registered webhook."
    )
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
    title: str = Field(
        min_length=1, max_length=300, description="A Jinja2 template, in the staff's language."
    )
    detail: str | None = Field(default=None, max_length=4000)
    assign: Assignment = Assignment()
    due_in: timedelta = Field(default=timedelta(days=1), ge=timedelta(0), le=timedelta(days=400))
    purpose: Purpose = Field(
        default=Purpose.service,
        description="A marketing task (a sales call) needs the customer's phone consent.",
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
    month = {Period.month: moment_local.month, Period.quarter: (moment_local.month - 1) // 3 * 3 + 1}.get(
        every, 1
    )
    return moment_local.replace(month=month, day=1, hour=0, minute=0, second=0, microsecond=0)
