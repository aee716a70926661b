"""The dry run: what an event (or a calendar period, or an announcement) would cause, written nowhere.

It goes through the same code as the real thing (conditions, steps, templates, the dispatch
gate) and only leaves out the writing and the sending.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from services.notify import policy_store
from services.notify.channels import configured_channels
from services.notify.conditions import holds
from services.notify.consumers import complaint_material
from services.notify.facts import complaint_facts, customer_facts, event_facts
from services.notify.models import ComplaintRef, Contact
from services.notify.playbooks import (
    AnnouncementTrigger,
    EventTrigger,
    MessageStep,
    ScheduleTrigger,
    TaskStep,
    period_label,
    simulate,
)
from services.notify.policy import Outgoing, Policy, decide, quiet_hours_for, zone
from services.notify.policy_store import Playbook
from services.notify.projection import Recipient, contact_as_mapping, recipients, topic_key
from services.notify.runs import Effects, Occasion, perform
from services.notify.schemas import DryRunRead, DryRunRequest, PlannedAction, PlaybookOutcome
from services.notify.settings import NotifySettings
from shared import templates
from shared.events import REGISTRY, Event
from shared.events.customer import ContactChannel, Purpose
from shared.problems import Unprocessable

DRY_RUN_TIME_BUDGET = 0.8
"""Seconds all the templates of one dry run may take together: an answer comes within a second."""


def _event_of(request: DryRunRequest) -> Event | None:
    if request.event is None:
        return None
    event_class = REGISTRY.get(request.event.type)
    if event_class is None:
        raise Unprocessable(f"Unknown event type {request.event.type!r}.", field="event.type")
    try:
        return event_class.model_validate(request.event.data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise Unprocessable(f"{where}: {first['msg']}", field=f"event.data.{where}") from None


def _applies(playbook: Playbook, event: Event | None, topic: str | None) -> bool:
    trigger = playbook.definition.trigger
    if isinstance(trigger, EventTrigger):
        return event is not None and trigger.event == event.type
    if isinstance(trigger, AnnouncementTrigger):
        return event is None and topic is not None
    return event is None and topic is None


async def dry_run(
    *, session: AsyncSession, request: DryRunRequest, settings: NotifySettings, now: datetime
) -> DryRunRead:
    event = _event_of(request)
    at = request.at or now
    customer_id: uuid.UUID = event.customer_id if event is not None else request.customer_id  # type: ignore[assignment]
    policy = (await policy_store.policy(session=session)).policy
    if request.draft is not None and request.playbook_key is not None:
        candidates = [Playbook(request.playbook_key, -1, request.draft, "draft", None)]
    else:
        in_force = await policy_store.in_force(session=session)
        if request.playbook_key is not None and request.playbook_key not in in_force:
            raise Unprocessable(f"No playbook {request.playbook_key!r}.", field="playbook_key")
        candidates = [in_force[request.playbook_key]] if request.playbook_key else list(in_force.values())
    contact = await session.get(Contact, customer_id)
    recipient = (await recipients([customer_id], session=session)).get(customer_id)

    material: dict[str, Any] = {}
    facts: dict[str, Any] = {}
    if event is not None:
        material["event"] = event.model_dump(mode="json")
        facts |= event_facts(event)
        complaint_id = getattr(event, "complaint_id", None)
        if complaint_id is not None:
            ref = await session.get(ComplaintRef, complaint_id)
            material["complaint"] = complaint_material(event, ref)
            facts |= complaint_facts({"status": ref.status, "category": ref.category} if ref else None)
    if request.announcement_topic is not None:
        material["announcement"] = {
            "id": "dry-run",
            "topic": request.announcement_topic,
            "title": request.announcement_topic,
            "body": "…",
        }
        facts["announcement.topic"] = topic_key(request.announcement_topic)
    facts |= customer_facts(contact_as_mapping(contact))

    with templates.time_budget(DRY_RUN_TIME_BUDGET):
        outcomes = await _outcomes(
            session=session,
            candidates=candidates,
            request=request,
            event=event,
            material=material,
            facts=facts,
            contact=contact,
            recipient=recipient,
            policy=policy,
            settings=settings,
            customer_id=customer_id,
            at=at,
        )
    return DryRunRead(customer_id=customer_id, playbooks=outcomes)


async def _outcomes(
    *,
    session: AsyncSession,
    candidates: list[Playbook],
    request: DryRunRequest,
    event: Event | None,
    material: dict[str, Any],
    facts: dict[str, Any],
    contact: Contact | None,
    recipient: Recipient | None,
    policy: Policy,
    settings: NotifySettings,
    customer_id: uuid.UUID,
    at: datetime,
) -> list[PlaybookOutcome]:
    outcomes = []
    for playbook in candidates:
        if not _applies(playbook, event, request.announcement_topic):
            continue
        trigger = playbook.definition.trigger
        if isinstance(trigger, ScheduleTrigger):
            material = {
                **material,
                "period": period_label(at.astimezone(zone(policy.default_time_zone, "UTC")), trigger.every),
            }
        outcome = PlaybookOutcome(playbook=playbook.key, version=playbook.version, starts=False)
        outcomes.append(outcome)
        if contact is not None and contact.status == "erased":
            outcome.reason = "the customer was erased"
            continue
        if not playbook.definition.enabled:
            outcome.reason = "the playbook is disabled"
            continue
        failing = [c.fact for c in playbook.definition.conditions if not holds([c], facts)]
        if failing:
            outcome.reason = "its conditions do not hold: " + ", ".join(failing)
            continue
        outcome.starts = True
        plan = simulate(playbook.definition, facts, now=at)
        outcome.skipped_steps = [step_id for step_id, _ in plan.skipped]
        outcome.stops_at = plan.stopped_at
        occasion = Occasion(
            cause_key="dry-run", customer_id=customer_id, cause_event_id=None, facts=facts, material=material
        )
        for index, planned in enumerate(plan.steps):
            effects = Effects()
            await perform(
                session=session,
                playbook=playbook,
                occasion=occasion,
                actions=[(index, planned.step)],
                contact=contact,
                policy=policy,
                settings=settings,
                now=planned.at,
                effects=effects,
            )
            if request.draft is not None and effects.template_problems:
                step_id, reason = effects.template_problems[0]
                raise Unprocessable(f"Step {step_id!r}: {reason}", field=f"draft.steps.{index}", step=step_id)
            action = PlannedAction(step=planned.step.id, kind=planned.step.kind, at=planned.at)
            if isinstance(planned.step, TaskStep):
                action.purpose = planned.step.purpose
                if not effects.tasks:
                    action.blocked = "a marketing task needs the customer's phone consent"
                else:
                    task = effects.tasks[0]
                    action.title, action.body = task["title"], task["detail"]
                    action.assignee, action.assignee_role = task["assignee"], task["assignee_role"]
            else:
                row = (effects.notifications or effects.failed)[0]
                action.title, action.body, action.purpose = row["title"], row["body"], Purpose(row["purpose"])
                if row["status"] == "failed":
                    action.blocked = row["last_error"]
                elif isinstance(planned.step, MessageStep):
                    decision = decide(
                        Outgoing(
                            purpose=planned.step.purpose,
                            candidates=planned.step.channels,
                            urgent=planned.step.urgent,
                            created_at=planned.at,
                        ),
                        reach=recipient.reach if recipient else None,
                        profile_known=bool(contact and contact.known),
                        policy=policy,
                        now=planned.at,
                        time_zone=zone(contact.time_zone if contact else None, policy.default_time_zone),
                        quiet=quiet_hours_for(policy, recipient.quiet_hours if recipient else None),
                        marketing_sent=0,
                        configured=configured_channels(settings),
                    )
                    action.channel = decision.channel
                    if decision.suppressed:
                        action.blocked = decision.suppressed
                    elif decision.wait_until:
                        action.blocked = f"waits until {decision.wait_until.isoformat()}"
                else:
                    action.channel = ContactChannel.webhook
            outcome.actions.append(action)
    return outcomes
