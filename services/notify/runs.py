"""Running playbooks: an occasion (an event, a calendar period, an announcement) starts a run; its
steps become messages, alerts and tasks; a wait leaves the run in the database with a due time
for the scanner (``resume_due``), so delayed steps survive restarts.

Everything a run produces carries an idempotency key of cause, playbook and step, and is
inserted with "skip if it exists": a repeated cause produces nothing new.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.notify import policy_store
from services.notify.conditions import Facts
from services.notify.facts import complaint_facts, customer_facts
from services.notify.models import ComplaintRef, Contact, Notification, PlaybookRun, Task
from services.notify.playbooks import (
    ActionStep,
    AlertStep,
    MessageStep,
    Progress,
    StaffRole,
    TaskStep,
    advance,
    idempotency_key,
    matches,
)
from services.notify.policy import Policy, offer_for
from services.notify.policy_store import Playbook
from services.notify.projection import consent_granted, contact_as_mapping, insert_ignoring_duplicates
from services.notify.rendering import Renderings
from services.notify.settings import NotifySettings
from shared import templates
from shared.events.customer import ContactChannel, Purpose
from shared.events.notify import NotificationFailed, TaskCreated
from shared.events.segmentation import Tier
from shared.outbox import stage
from shared.tracing import trace_context

log = logging.getLogger("csm.notify.runs")

SOURCE = "/csm/notify"


@dataclass(frozen=True)
class Occasion:
    """Why a run starts: its cause key (unique per event, period or announcement and customer),
    the customer, the facts of the occasion and the material its templates may use (JSON)."""

    cause_key: str
    customer_id: uuid.UUID
    cause_event_id: uuid.UUID | None
    facts: Facts
    material: dict[str, Any]
    announcement_id: uuid.UUID | None = None


@dataclass
class Effects:
    """Rows a batch of runs produces, written together at the end with duplicates skipped."""

    notifications: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    tasks: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    template_problems: list[tuple[str, str]] = field(default_factory=list)
    """(step id, reason) of each template that failed to render: its step failed, the rest went on."""
    renderings: Renderings = field(default_factory=Renderings)

    def __bool__(self) -> bool:
        return bool(self.notifications or self.failed or self.tasks or self.runs)

    async def write(self, *, session: AsyncSession, now: datetime) -> None:
        if self.notifications:
            # The table, not the mapped class: a Core executemany, without the ORM's bulk bookkeeping
            # per row (an announcement writes thousands in a batch).
            await session.execute(
                insert_ignoring_duplicates(Notification.__table__, session=session), self.notifications
            )
        for row in self.failed:
            inserted = await session.scalar(
                insert_ignoring_duplicates(Notification, session=session)
                .values(row)
                .returning(Notification.id)
            )
            if inserted is not None:
                stage(
                    NotificationFailed(
                        customer_id=row["customer_id"],
                        notification_id=inserted,
                        channel=ContactChannel(row["channel"]),
                        purpose=Purpose(row["purpose"]),
                        playbook=row["playbook"],
                        step=row["step"],
                        reason=row["last_error"],
                        attempts=1,
                        failed_at=now,
                    ),
                    session=session,
                    source=SOURCE,
                    cause=row["cause_event_id"],
                    time=now,
                )
        for row in self.tasks:
            inserted = await session.scalar(
                insert_ignoring_duplicates(Task, session=session).values(row).returning(Task.id)
            )
            if inserted is not None:
                stage(
                    TaskCreated(
                        customer_id=row["customer_id"],
                        task_id=inserted,
                        kind=row["kind"],
                        playbook=row["playbook"],
                        assignee=row["assignee"],
                        assignee_role=row["assignee_role"],
                        due_at=row["due_at"],
                        cause_event_id=row["cause_event_id"],
                    ),
                    session=session,
                    source=SOURCE,
                    cause=row["cause_event_id"],
                    time=now,
                )
        if self.runs:
            await session.execute(
                insert_ignoring_duplicates(PlaybookRun.__table__, session=session), self.runs
            )
        self.notifications, self.failed, self.tasks, self.runs = [], [], [], []


def _context(
    *,
    occasion_material: dict[str, Any],
    contact: Contact | None,
    policy: Policy,
    language_tag: str,
    settings: NotifySettings,
    customer_id: uuid.UUID,
) -> dict[str, Any]:
    language = templates.language_of(language_tag)
    tier = contact.tier if contact else None
    complaint = occasion_material.get("complaint") or {}
    base = settings.public_base_url.rstrip("/")
    return {
        "customer": {
            "name": contact.name if contact else None,
            "tier": tier,
            "key_account": bool(contact.key_account) if contact else False,
        },
        "event": occasion_material.get("event") or {},
        "complaint": complaint,
        "announcement": occasion_material.get("announcement") or {},
        "period": occasion_material.get("period"),
        "offer": offer_for(policy, Tier(tier) if tier else None, language),
        "links": {
            "survey": f"{base}/surveys/{complaint.get('id', '')}",
            "preferences": f"{base}/preferences/{customer_id}",
        },
        "language": language,
        "time_zone": (contact.time_zone if contact else None) or policy.default_time_zone,
    }


def _assignee(step: TaskStep, contact: Contact | None, material: dict[str, Any]) -> tuple[str | None, str]:
    person = None
    if step.assign.person == "account_manager" and contact is not None:
        person = contact.account_manager
    elif step.assign.person == "first_owner":
        person = (material.get("complaint") or {}).get("first_owner")
    role = step.assign.role
    if role == "must_act":
        named = str((material.get("event") or {}).get("must_act", "")).lower()
        role = StaffRole(named) if named in StaffRole.__members__ else StaffRole.supervisor
    return person, StaffRole(role).value


async def perform(
    *,
    session: AsyncSession,
    playbook: Playbook,
    occasion: Occasion,
    actions: list[tuple[int, ActionStep]],
    contact: Contact | None,
    policy: Policy,
    settings: NotifySettings,
    now: datetime,
    effects: Effects,
) -> None:
    """Turn a run's actions into rows: messages and alerts to send, tasks to do."""
    for _, step in actions:
        key = idempotency_key(occasion.cause_key, playbook.key, step.id)
        if isinstance(step, TaskStep):
            if step.purpose is Purpose.marketing and not await consent_granted(
                occasion.customer_id, ContactChannel.phone, Purpose.marketing, session=session
            ):
                continue
            context = _context(
                occasion_material=occasion.material,
                contact=contact,
                policy=policy,
                language_tag=policy.staff_locale,
                settings=settings,
                customer_id=occasion.customer_id,
            )
            try:
                title = effects.renderings.render(step.title, context)[:300]
                detail = effects.renderings.render(step.detail, context) if step.detail else None
            except templates.TemplateProblem as problem:
                title, detail = f"{step.task} ({playbook.key})", str(problem)
                effects.template_problems.append((step.id, str(problem)))
            person, role = _assignee(step, contact, occasion.material)
            effects.tasks.append(
                {
                    "id": uuid.uuid4(),
                    "idempotency_key": key,
                    "customer_id": occasion.customer_id,
                    "kind": step.task,
                    "playbook": playbook.key,
                    "step": step.id,
                    "title": title,
                    "detail": detail,
                    "purpose": step.purpose.value,
                    "assignee": person,
                    "assignee_role": role,
                    "status": "open",
                    "due_at": now + step.due_in,
                    "cause_event_id": occasion.cause_event_id,
                    "created_at": now,
                }
            )
            continue
        to_customer = isinstance(step, MessageStep)
        wanted = (contact.locale if contact else None) or policy.default_locale
        tag = templates.pick_locale(
            step.template.keys(), wanted if to_customer else policy.staff_locale, policy.default_locale
        )
        content = step.template[tag]
        context = _context(
            occasion_material=occasion.material,
            contact=contact,
            policy=policy,
            language_tag=tag,
            settings=settings,
            customer_id=occasion.customer_id,
        )
        channels = (
            [c.value for c in step.channels]
            if isinstance(step, MessageStep)
            else [ContactChannel.webhook.value]
        )
        row: dict[str, Any] = {
            "id": uuid.uuid4(),
            "customer_id": occasion.customer_id,
            "idempotency_key": key,
            "playbook": playbook.key,
            "playbook_version": playbook.version,
            "step": step.id,
            "channel": channels[0],
            "candidates": channels,
            "webhook": step.webhook if isinstance(step, AlertStep) else None,
            "purpose": step.purpose.value if isinstance(step, MessageStep) else Purpose.service.value,
            "urgent": step.urgent if isinstance(step, MessageStep) else True,
            "language": tag,
            "cause_event_id": occasion.cause_event_id,
            "announcement_id": occasion.announcement_id,
            "created_at": now,
            "due_at": now,
            "attempts": 0,
            "traceparent": trace_context(occasion.cause_event_id)[0],
        }
        try:
            row.update(
                title=effects.renderings.render(content.title, context)[:300],
                body=effects.renderings.render(content.body, context),
                sms_text=effects.renderings.render(content.sms, context)[:500] if content.sms else None,
                status="pending",
            )
            effects.notifications.append(row)
        except templates.TemplateProblem as problem:
            # Visible, not silent: the message is failed with the reason, and the event says so.
            row.update(
                title=f"{playbook.key}/{step.id}",
                body="",
                sms_text=None,
                status="failed",
                last_error=str(problem)[:500],
                failed_at=now,
            )
            effects.failed.append(row)
            effects.template_problems.append((step.id, str(problem)))


def _run_row(playbook: Playbook, occasion: Occasion, progress: Progress, now: datetime) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "run_key": f"{occasion.cause_key}:{playbook.key}",
        "playbook": playbook.key,
        "playbook_version": playbook.version,
        "customer_id": occasion.customer_id,
        "cause_event_id": occasion.cause_event_id,
        "facts": occasion.facts,
        "context": occasion.material,
        "next_step": progress.resume_step,
        "due_at": progress.resume_at,
        "state": "waiting",
        "outcome": None,
        "created_at": now,
        "updated_at": now,
    }


async def start(
    *,
    session: AsyncSession,
    playbook: Playbook,
    occasion: Occasion,
    contact: Contact | None,
    policy: Policy,
    settings: NotifySettings,
    now: datetime,
    effects: Effects,
) -> bool:
    """Start ``playbook`` for ``occasion`` if its conditions hold; True if it started."""
    if contact is not None and contact.status == "erased":
        return False
    facts = {**occasion.facts, **customer_facts(contact_as_mapping(contact))}
    if not matches(playbook.definition, facts):
        return False
    progress = advance(playbook.definition, facts, from_step=0, now=now)
    await perform(
        session=session,
        playbook=playbook,
        occasion=occasion,
        actions=progress.actions,
        contact=contact,
        policy=policy,
        settings=settings,
        now=now,
        effects=effects,
    )
    if not progress.finished:
        effects.runs.append(_run_row(playbook, occasion, progress, now))
    return True


async def resume_due(*, session: AsyncSession, settings: NotifySettings, now: datetime, limit: int) -> int:
    """Take the next steps of runs whose wait is over; returns how many runs moved."""
    runs = (
        await session.scalars(
            sa.select(PlaybookRun)
            .where(PlaybookRun.state == "waiting", PlaybookRun.due_at <= now)
            .order_by(PlaybookRun.due_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).all()
    if not runs:
        return 0
    policy = (await policy_store.policy(session=session)).policy
    in_force = await policy_store.in_force(session=session)
    effects = Effects()
    for run in runs:
        current = in_force.get(run.playbook)
        started = await policy_store.version_of(run.playbook, run.playbook_version, session=session)
        if current is None or started is None or not current.definition.enabled:
            run.state, run.outcome = "stopped", "the playbook was disabled or removed"
            run.updated_at = now
            continue
        contact = await session.get(Contact, run.customer_id)
        if contact is not None and contact.status == "erased":
            run.state, run.outcome, run.updated_at = "stopped", "the customer was erased", now
            continue
        complaint_id = (run.context.get("complaint") or {}).get("id")
        ref = await session.get(ComplaintRef, uuid.UUID(complaint_id)) if complaint_id else None
        facts = {
            **run.facts,
            **customer_facts(contact_as_mapping(contact)),
            **complaint_facts(_ref_mapping(ref)),
        }
        occasion = Occasion(
            cause_key=run.run_key.removesuffix(f":{run.playbook}"),
            customer_id=run.customer_id,
            cause_event_id=run.cause_event_id,
            facts=run.facts,
            material=run.context,
        )
        # Waits count from when the step was due, not from when the scanner got to it.
        progress = advance(started.definition, facts, from_step=run.next_step, now=run.due_at)
        await perform(
            session=session,
            playbook=started,
            occasion=occasion,
            actions=progress.actions,
            contact=contact,
            policy=policy,
            settings=settings,
            now=now,
            effects=effects,
        )
        run.updated_at = now
        if progress.stopped_at:
            run.state, run.outcome = (
                "stopped",
                f"stopped at {progress.stopped_at}: its conditions no longer hold",
            )
        elif progress.finished:
            run.state, run.outcome = "done", None
        else:
            run.next_step, run.due_at = progress.resume_step or 0, progress.resume_at or now
    await effects.write(session=session, now=now)
    return len(runs)


def _ref_mapping(ref: ComplaintRef | None) -> dict[str, Any] | None:
    if ref is None:
        return None
    return {"status": ref.status, "category": ref.category, "first_owner": ref.first_owner}
