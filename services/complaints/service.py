"""Complaint intake and the workflow: the logic behind the API, which only flushes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from services.complaints import clocks as sla_clocks
from services.complaints import directory, intake, policy_store, routing_store
from services.complaints.errors import (
    ComplaintNotFound,
    ComplaintNotOpen,
    NotYourComplaint,
    NoVisitRequired,
    TransitionNotAllowed,
)
from services.complaints.models import Complaint, SlaClock, Transition
from services.complaints.models import idempotency_key as idempotency_keys
from services.complaints.policy import ComplaintPolicy
from services.complaints.schemas import (
    ComplaintCreate,
    ComplaintUpdate,
)
from services.complaints.workflow import AWAITING_RESPONSE, IllegalTransition, Status, check, is_open
from shared import idempotency
from shared.auth import Principal
from shared.db import ordered_id
from shared.events.complaints import (
    ComplaintOpened,
    ComplaintStatusChanged,
    SlaTarget,
)
from shared.outbox import stage
from shared.problems import Unprocessable
from shared.roles import Role

SOURCE = sla_clocks.SOURCE


@dataclass(frozen=True)
class Actor:
    """Who does something to a complaint; only staff actions count as a response to the customer."""

    subject: str
    staff: bool


async def open_complaint(
    *,
    session: AsyncSession,
    complaint_in: ComplaintCreate,
    first_owner: str,
    now: datetime,
    currency: str,
    source: str = "api",
    complaint_id: uuid.UUID | None = None,
    idempotency_key: str | None = None,
    idempotency_scope: str = "",
    idempotency_ttl: timedelta = timedelta(hours=24),
    opened_at: datetime | None = None,
) -> tuple[Complaint, dict[SlaTarget, SlaClock] | None]:
    """Take a complaint; returns it and its clocks, or None for the clocks when the request repeats
    an Idempotency-Key (the complaint is then the one the first request made).

    ``opened_at`` is when the customer complained, if another system took it earlier than now:
    the promise runs from then.
    """
    # Random, not time-ordered: the id's first eight hex digits are the reference customers quote.
    complaint_id = complaint_id or uuid.uuid4()
    if idempotency_key is None:
        context = await intake.read_context(
            session=session, customer_id=complaint_in.customer_id, receiver=first_owner
        )
    else:
        claim = await idempotency.claim(
            idempotency_keys,
            session=session,
            scope=idempotency_scope,
            key=idempotency_key,
            request_fingerprint=idempotency.fingerprint(complaint_in.model_dump(mode="json")),
            resource_id=complaint_id,
            now=now,
            ttl=idempotency_ttl,
            # What intake reads comes back with the key, in the same statement.
            also=intake.CONTEXT,
            also_params=intake.context_params(complaint_in.customer_id, first_owner),
        )
        if claim.earlier is not None:
            return await get(session=session, complaint_id=claim.earlier), None
        assert claim.also is not None
        context = intake.context_of(claim.also)
    if context.receiver_is_team:
        first_owner = await directory.first_owner_in_team(session=session, team=first_owner, now=now)
    policy = await policy_store.at_version(context.policy_version, session=session, currency=currency)
    opened = min(opened_at or now, now)
    complaint = Complaint(
        id=complaint_id,
        customer_id=complaint_in.customer_id,
        channel=complaint_in.channel.value,
        language=complaint_in.language,
        category=complaint_in.category.value,
        severity=complaint_in.severity.value,
        description=complaint_in.description,
        desired_outcome=complaint_in.desired_outcome,
        attachments=[attachment.model_dump(mode="json") for attachment in complaint_in.attachments],
        status=Status.new.value,
        steps=1,
        first_owner=first_owner,
        assignee=None,
        source=source,
        opened_at=opened,
        # Unknown customers get the default promise until their tier arrives (see customers.retarget).
        tier=context.tier,
        key_account=context.key_account,
        policy_version=context.policy_version,
        cycle=1,
        visit_required=complaint_in.visit_required,
        escalation_level=0,
        compensation_minor=0,
        reopen_count=0,
        created_at=now,
        updated_at=now,
    )
    await routing_store.route_new(
        session=session, complaint=complaint, version=context.routing_version, now=now
    )
    first_step = Transition(
        id=ordered_id(),
        complaint_id=complaint.id,
        step=0,
        cycle=1,
        from_status=None,
        to_status=Status.new.value,
        actor=first_owner,
        reason=None,
        at=opened,
    )
    clocks = sla_clocks.promises_of_new(complaint, policy=policy)
    await intake.write_new(complaint, session=session, first_step=first_step, clocks=clocks.values())
    stage(
        ComplaintOpened(
            customer_id=complaint.customer_id,
            complaint_id=complaint.id,
            channel=complaint_in.channel,
            category=complaint_in.category,
            severity=complaint_in.severity,
            first_owner=first_owner,
            tier=sla_clocks.tier_of(complaint),
            first_response_due_at=clocks[SlaTarget.first_response].due_at,
            resolution_due_at=clocks[SlaTarget.resolution].due_at,
            opened_at=complaint.opened_at,
        ),
        session=session,
        source=SOURCE,
        time=now,
    )
    return complaint, clocks


async def get(*, session: AsyncSession, complaint_id: uuid.UUID, lock: bool = False) -> Complaint:
    complaint = await session.get(Complaint, complaint_id, with_for_update=lock or None)
    if complaint is None:
        raise ComplaintNotFound(complaint_id)
    return complaint


async def check_may_act(*, session: AsyncSession, complaint_id: uuid.UUID, principal: Principal) -> None:
    """Refuse an agent who neither owns nor is assigned the complaint, in person or through a team they
    are in (supervisors and above may act)."""
    if principal.at_least(Role.supervisor):
        return
    complaint = await get(session=session, complaint_id=complaint_id)
    holders = [name for name in (complaint.first_owner, complaint.assignee) if name is not None]
    if principal.subject in holders:
        return
    if not await directory.in_any_team(session=session, subject=principal.subject, teams=holders):
        raise NotYourComplaint()


async def policy_of(complaint: Complaint, *, session: AsyncSession, currency: str) -> ComplaintPolicy:
    return await policy_store.at_version(complaint.policy_version, session=session, currency=currency)


def record_step(
    complaint: Complaint,
    current: Status | None,
    to: Status,
    *,
    session: AsyncSession,
    actor: str,
    reason: str | None,
    now: datetime,
) -> None:
    session.add(
        Transition(
            complaint_id=complaint.id,
            step=complaint.steps,
            cycle=complaint.cycle,
            from_status=current.value if current else None,
            to_status=to.value,
            actor=actor,
            reason=reason,
            at=now,
        )
    )
    complaint.steps += 1


def move(
    complaint: Complaint,
    to: Status,
    *,
    session: AsyncSession,
    actor: Actor,
    reason: str | None,
    now: datetime,
) -> Status:
    """Record one step of the workflow, or raise IllegalTransition (a 409) naming the allowed ones."""
    current = Status(complaint.status)
    try:
        check(current, to)
    except IllegalTransition as error:
        raise TransitionNotAllowed(str(error), allowed=[status.value for status in error.allowed]) from None
    if current in AWAITING_RESPONSE and actor.staff and complaint.first_response_at is None:
        complaint.first_response_at = now
    complaint.status = to.value
    complaint.updated_at = now
    record_step(complaint, current, to, session=session, actor=actor.subject, reason=reason, now=now)
    stage(
        ComplaintStatusChanged(
            customer_id=complaint.customer_id,
            complaint_id=complaint.id,
            previous_status=current.value,
            status=to.value,
            actor=actor.subject,
            changed_at=now,
        ),
        session=session,
        source=SOURCE,
        time=now,
    )
    return current


async def transition(
    *,
    session: AsyncSession,
    complaint_id: uuid.UUID,
    to: Status,
    actor: Actor,
    reason: str | None,
    now: datetime,
    currency: str,
) -> Complaint:
    complaint = await get(session=session, complaint_id=complaint_id, lock=True)
    move(complaint, to, session=session, actor=actor, reason=reason, now=now)
    if to is Status.closed:
        complaint.closed_at = now
    await session.flush()
    await sla_clocks.refresh(
        session=session,
        complaint=complaint,
        policy=await policy_of(complaint, session=session, currency=currency),
        now=now,
    )
    return complaint


async def update(
    *,
    session: AsyncSession,
    complaint_id: uuid.UUID,
    complaint_in: ComplaintUpdate,
    now: datetime,
    currency: str,
) -> Complaint:
    complaint = await get(session=session, complaint_id=complaint_id, lock=True)
    changes = complaint_in.model_dump(exclude_unset=True, mode="json")
    if ("severity" in changes and changes["severity"] is None) or (
        "category" in changes and changes["category"] is None
    ):
        field = "severity" if changes.get("severity", "") is None else "category"
        raise Unprocessable(f"{field} cannot be cleared.", field=field)
    if changes.get("visit_required") is None:
        changes.pop("visit_required", None)
    if not is_open(Status(complaint.status)) and {"severity", "visit_required"} & set(changes):
        raise ComplaintNotOpen(complaint.status, "keeps its promises")
    retarget = changes.get("severity", complaint.severity) != complaint.severity
    for field, value in changes.items():
        setattr(complaint, field, value)
    complaint.updated_at = now
    if retarget:
        # A new severity is a new promise, made under the policy in force now.
        complaint.policy_version = await policy_store.current_version(session=session)
    clocks = await sla_clocks.refresh(
        session=session,
        complaint=complaint,
        policy=await policy_of(complaint, session=session, currency=currency),
        now=now,
    )
    if retarget:
        sla_clocks.announce_retarget(
            session=session,
            complaint=complaint,
            clocks=clocks,
            previous_tier=sla_clocks.tier_of(complaint),
            reason="the severity changed",
            now=now,
        )
    return complaint


async def assign(
    *,
    session: AsyncSession,
    complaint_id: uuid.UUID,
    assignee: str,
    actor: Actor,
    reason: str | None,
    now: datetime,
) -> Complaint:
    """Hand the work to someone; the first owner stays the first owner."""
    complaint = await get(session=session, complaint_id=complaint_id, lock=True)
    if Status(complaint.status) in (Status.resolved, Status.closed):
        raise ComplaintNotOpen(complaint.status, "cannot be assigned")
    complaint.assignee = await directory.worker_for(session=session, name=assignee, now=now)
    complaint.updated_at = now
    return complaint


async def record_visit(
    *,
    session: AsyncSession,
    complaint_id: uuid.UUID,
    visited_at: datetime | None,
    now: datetime,
    currency: str,
) -> Complaint:
    complaint = await get(session=session, complaint_id=complaint_id, lock=True)
    if not complaint.visit_required:
        raise NoVisitRequired()
    when = visited_at or now
    if when > now:
        raise Unprocessable("A visit cannot be recorded before it happens.", field="visited_at")
    if when < complaint.opened_at:
        raise Unprocessable("The visit is earlier than the complaint.", field="visited_at")
    complaint.visited_at = when
    complaint.updated_at = now
    await sla_clocks.refresh(
        session=session,
        complaint=complaint,
        policy=await policy_of(complaint, session=session, currency=currency),
        now=now,
    )
    return complaint
