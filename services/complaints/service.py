"""Complaint intake and the workflow: the logic behind the API, which only flushes."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.complaints import clocks as sla_clocks
from services.complaints import policy_store
from services.complaints.models import Complaint, Compensation, CustomerTier, Escalation, SlaClock, Transition
from services.complaints.models import idempotency_key as idempotency_keys
from services.complaints.policy import FIRST_OWNER, ComplaintPolicy
from services.complaints.schemas import (
    ClockRead,
    ComplaintCreate,
    ComplaintRead,
    ComplaintUpdate,
    ResolutionCreate,
)
from services.complaints.workflow import AWAITING_RESPONSE, PAUSED, IllegalTransition, Status, check
from shared import idempotency
from shared.events.complaints import (
    AttachmentRef,
    ComplaintEscalated,
    ComplaintOpened,
    ComplaintReopened,
    ComplaintResolved,
    ComplaintStatusChanged,
    SlaTarget,
)
from shared.events.segmentation import Tier
from shared.money import from_minor
from shared.outbox import stage
from shared.pagination import decode_cursor, encode_cursor
from shared.problems import Conflict, NotFound, Unprocessable

SOURCE = "/csm/complaints"


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
) -> tuple[Complaint, bool]:
    """Take a complaint; returns it and whether it is new (False: a repeat of an Idempotency-Key).

    ``opened_at`` is when the customer complained, if another system took it earlier than now:
    the promise runs from then.
    """
    complaint_id = complaint_id or uuid.uuid4()
    if idempotency_key is not None:
        earlier = await idempotency.claim(
            session, idempotency_keys, scope=idempotency_scope, key=idempotency_key,
            request_fingerprint=idempotency.fingerprint(complaint_in.model_dump(mode="json")),
            resource_id=complaint_id, now=now, ttl=idempotency_ttl,
        )
        if earlier is not None:
            return await get(session=session, complaint_id=earlier), False
    known = await session.get(CustomerTier, complaint_in.customer_id)
    version = await policy_store.current_version(session)
    policy = await policy_store.at_version(session, version, currency=currency)
    complaint = Complaint(
        id=complaint_id,
        customer_id=complaint_in.customer_id,
        channel=complaint_in.channel.value,
        category=complaint_in.category.value,
        severity=complaint_in.severity.value,
        description=complaint_in.description,
        desired_outcome=complaint_in.desired_outcome,
        attachments=[attachment.model_dump(mode="json") for attachment in complaint_in.attachments],
        status=Status.new.value,
        steps=0,
        first_owner=first_owner,
        source=source,
        opened_at=min(opened_at or now, now),
        # Unknown customers get the default promise until their tier arrives (see customers.retarget).
        tier=known.tier if known else None,
        key_account=known.key_account if known else False,
        policy_version=version,
        cycle=1,
        visit_required=complaint_in.visit_required,
        escalation_level=0,
        compensation_minor=0,
        reopen_count=0,
        created_at=now,
        updated_at=now,
    )
    session.add(complaint)
    record_step(session, complaint, None, Status.new, actor=first_owner, reason=None, now=complaint.opened_at)
    # The promise is computed before the first flush, so the complaint is written once, due times and all.
    clocks = await sla_clocks.refresh(session, complaint=complaint, policy=policy, now=now, new=True)
    await session.flush()
    stage(
        session,
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
        source=SOURCE,
        time=now,
    )
    return complaint, True


async def get(*, session: AsyncSession, complaint_id: uuid.UUID, lock: bool = False) -> Complaint:
    complaint = await session.get(Complaint, complaint_id, with_for_update=lock or None)
    if complaint is None:
        raise NotFound(f"No complaint {complaint_id}.")
    return complaint


async def policy_of(session: AsyncSession, complaint: Complaint, *, currency: str) -> ComplaintPolicy:
    return await policy_store.at_version(session, complaint.policy_version, currency=currency)


async def to_read(session: AsyncSession, complaints: Sequence[Complaint], *, currency: str) -> list[ComplaintRead]:
    """The API's view of complaints, with the promises of their current cycles."""
    by_key: dict[tuple[uuid.UUID, int], list[SlaClock]] = {}
    if complaints:
        rows = await session.scalars(
            sa.select(SlaClock).where(SlaClock.complaint_id.in_([c.id for c in complaints]))
        )
        for clock in rows.all():
            by_key.setdefault((clock.complaint_id, clock.cycle), []).append(clock)
    order = {target.value: index for index, target in enumerate(SlaTarget)}
    reads = []
    for complaint in complaints:
        policy = await policy_of(session, complaint, currency=currency)
        clocks = sorted(by_key.get((complaint.id, complaint.cycle), []), key=lambda clock: order[clock.target])
        reads.append(
            ComplaintRead.model_validate(
                {
                    **{column: getattr(complaint, column) for column in Complaint.__table__.columns.keys()},
                    "attachments": [AttachmentRef.model_validate(a) for a in complaint.attachments],
                    "compensation": from_minor(complaint.compensation_minor),
                    "currency": policy.currency,
                    "clocks": [ClockRead.model_validate(clock) for clock in clocks],
                }
            )
        )
    return reads


@dataclass(frozen=True)
class ComplaintFilter:
    first_owner: str | None = None
    assignee: str | None = None
    customer_id: uuid.UUID | None = None
    status: Status | None = None
    open: bool | None = None
    tier: Tier | None = None
    category: str | None = None
    channel: str | None = None
    severity: str | None = None
    opened_from: datetime | None = None
    opened_before: datetime | None = None

    def clauses(self) -> list[sa.ColumnElement[bool]]:
        equal = {
            Complaint.first_owner: self.first_owner, Complaint.assignee: self.assignee,
            Complaint.customer_id: self.customer_id, Complaint.status: self.status, Complaint.tier: self.tier,
            Complaint.category: self.category, Complaint.channel: self.channel, Complaint.severity: self.severity,
        }
        clauses: list[sa.ColumnElement[bool]] = [column == value for column, value in equal.items() if value is not None]
        if self.open is not None:
            is_open = Complaint.status.not_in([Status.resolved.value, Status.closed.value])
            clauses.append(is_open if self.open else sa.not_(is_open))
        if self.opened_from is not None:
            clauses.append(Complaint.opened_at >= self.opened_from)
        if self.opened_before is not None:
            clauses.append(Complaint.opened_at < self.opened_before)
        return clauses


async def list_complaints(
    *, session: AsyncSession, where: ComplaintFilter, limit: int, cursor: str | None
) -> tuple[list[Complaint], str | None]:
    """Newest first, by keyset on (opened_at, id)."""
    query = sa.select(Complaint).where(*where.clauses())
    if cursor is not None:
        opened, last_id = decode_cursor(cursor, 2)
        try:
            opened_at, after = datetime.fromisoformat(str(opened)), uuid.UUID(str(last_id))
        except ValueError:
            raise Unprocessable("Not a cursor this list gave out.", field="cursor", location="query") from None
        query = query.where(
            sa.or_(Complaint.opened_at < opened_at, sa.and_(Complaint.opened_at == opened_at, Complaint.id < after))
        )
    rows = list((await session.scalars(
        query.order_by(Complaint.opened_at.desc(), Complaint.id.desc()).limit(limit + 1)
    )).all())
    page = rows[:limit]
    following = encode_cursor(page[-1].opened_at.isoformat(), str(page[-1].id)) if len(rows) > limit else None
    return page, following


def record_step(session: AsyncSession, complaint: Complaint, current: Status | None, to: Status, *, actor: str,
                reason: str | None, now: datetime) -> None:
    session.add(Transition(complaint_id=complaint.id, step=complaint.steps, cycle=complaint.cycle,
                           from_status=current.value if current else None, to_status=to.value, actor=actor,
                           reason=reason, at=now))
    complaint.steps += 1


def _move(session: AsyncSession, complaint: Complaint, to: Status, *, actor: Actor, reason: str | None,
          now: datetime) -> Status:
    """Record one step of the workflow, or raise IllegalTransition (a 409) naming the allowed ones."""
    current = Status(complaint.status)
    try:
        check(current, to)
    except IllegalTransition as error:
        raise Conflict(str(error), allowed=[status.value for status in error.allowed]) from None
    if current in AWAITING_RESPONSE and actor.staff and complaint.first_response_at is None:
        complaint.first_response_at = now
    complaint.status = to.value
    complaint.updated_at = now
    record_step(session, complaint, current, to, actor=actor.subject, reason=reason, now=now)
    stage(
        session,
        ComplaintStatusChanged(customer_id=complaint.customer_id, complaint_id=complaint.id,
                               previous_status=current.value, status=to.value, actor=actor.subject, changed_at=now),
        source=SOURCE,
        time=now,
    )
    return current


async def transition(
    *, session: AsyncSession, complaint_id: uuid.UUID, to: Status, actor: Actor, reason: str | None, now: datetime,
    currency: str,
) -> Complaint:
    complaint = await get(session=session, complaint_id=complaint_id, lock=True)
    _move(session, complaint, to, actor=actor, reason=reason, now=now)
    if to is Status.closed:
        complaint.closed_at = now
    await session.flush()
    await sla_clocks.refresh(session, complaint=complaint, policy=await policy_of(session, complaint, currency=currency),
                             now=now)
    return complaint


async def update(
    *, session: AsyncSession, complaint_id: uuid.UUID, complaint_in: ComplaintUpdate, now: datetime, currency: str
) -> Complaint:
    complaint = await get(session=session, complaint_id=complaint_id, lock=True)
    changes = complaint_in.model_dump(exclude_unset=True, mode="json")
    if "severity" in changes and changes["severity"] is None or "category" in changes and changes["category"] is None:
        field = "severity" if changes.get("severity", "") is None else "category"
        raise Unprocessable(f"{field} cannot be cleared.", field=field)
    if changes.get("visit_required") is None:
        changes.pop("visit_required", None)
    retarget = changes.get("severity", complaint.severity) != complaint.severity
    for field, value in changes.items():
        setattr(complaint, field, value)
    complaint.updated_at = now
    if retarget:
        # A new severity is a new promise, made under the policy in force now.
        complaint.policy_version = await policy_store.current_version(session)
    await sla_clocks.refresh(session, complaint=complaint, policy=await policy_of(session, complaint, currency=currency),
                             now=now)
    return complaint


async def assign(
    *, session: AsyncSession, complaint_id: uuid.UUID, assignee: str, actor: Actor, reason: str | None, now: datetime
) -> Complaint:
    """Hand the work to someone; the first owner stays the first owner."""
    complaint = await get(session=session, complaint_id=complaint_id, lock=True)
    if Status(complaint.status) in (Status.resolved, Status.closed):
        raise Conflict(f"A complaint that is {complaint.status} cannot be assigned; reopen it first.")
    complaint.assignee = assignee
    complaint.updated_at = now
    return complaint


async def record_visit(
    *, session: AsyncSession, complaint_id: uuid.UUID, visited_at: datetime | None, now: datetime, currency: str
) -> Complaint:
    complaint = await get(session=session, complaint_id=complaint_id, lock=True)
    if not complaint.visit_required:
        raise Conflict("This complaint needs no on-site visit; set visit_required first.")
    when = visited_at or now
    if when > now:
        raise Unprocessable("A visit cannot be recorded before it happens.", field="visited_at")
    if when < complaint.opened_at:
        raise Unprocessable("The visit is earlier than the complaint.", field="visited_at")
    complaint.visited_at = when
    complaint.updated_at = now
    await sla_clocks.refresh(session, complaint=complaint, policy=await policy_of(session, complaint, currency=currency),
                             now=now)
    return complaint


async def escalate(
    *, session: AsyncSession, complaint: Complaint, policy: ComplaintPolicy, actor: str, reason: str, now: datetime,
    target: SlaTarget | None = None,
) -> Escalation:
    """Climb one rung of the ladder now; a Conflict at the top. Used by staff and by the scanner."""
    above = policy.next_level(complaint.escalation_level, key_account=complaint.key_account)
    if above is None:
        raise Conflict(f"The complaint is already at the top of the escalation ladder "
                       f"({policy.escalation[complaint.escalation_level].name}).")
    level = policy.escalation[above]
    must_act = complaint.first_owner if level.must_act == FIRST_OWNER else level.must_act
    complaint.escalation_level, complaint.escalated_at, complaint.escalation_due_at = above, now, None
    complaint.updated_at = now
    escalation = Escalation(complaint_id=complaint.id, level=above, level_name=level.name, must_act=must_act,
                            reason=reason, actor=actor, at=now)
    session.add(escalation)
    stage(
        session,
        ComplaintEscalated(
            customer_id=complaint.customer_id, complaint_id=complaint.id, level=above, level_name=level.name,
            must_act=must_act, reason=reason, escalated_at=now, first_owner=complaint.first_owner,
            tier=sla_clocks.tier_of(complaint), target=target,
        ),
        source=SOURCE,
        time=now,
    )
    return escalation


async def escalate_by_hand(
    *, session: AsyncSession, complaint_id: uuid.UUID, actor: str, reason: str, now: datetime, currency: str
) -> Escalation:
    complaint = await get(session=session, complaint_id=complaint_id, lock=True)
    if Status(complaint.status) in (Status.resolved, Status.closed):
        raise Conflict(f"A complaint that is {complaint.status} cannot be escalated; reopen it first.")
    policy = await policy_of(session, complaint, currency=currency)
    escalation = await escalate(session=session, complaint=complaint, policy=policy, actor=actor, reason=reason,
                                now=now)
    await sla_clocks.refresh(session, complaint=complaint, policy=policy, now=now)
    return escalation


async def resolve(
    *, session: AsyncSession, complaint_id: uuid.UUID, resolution_in: ResolutionCreate, actor: Actor, now: datetime,
    currency: str,
) -> Complaint:
    complaint = await get(session=session, complaint_id=complaint_id, lock=True)
    policy = await policy_of(session, complaint, currency=currency)
    if resolution_in.root_cause not in policy.root_causes:
        raise Unprocessable(f"Unknown root cause; the policy lists: {', '.join(policy.root_causes)}.",
                            field="root_cause")
    pending = await session.scalar(
        sa.select(sa.func.count()).select_from(Compensation)
        .where(Compensation.complaint_id == complaint.id, Compensation.status == "pending")
    )
    if pending:
        raise Conflict("A compensation on this complaint awaits approval; decide it before resolving.")
    history = await sla_clocks.history_of(session, complaint.id)
    _move(session, complaint, Status.resolved, actor=actor, reason=resolution_in.summary, now=now)
    first_contact = resolution_in.first_contact_resolution
    if first_contact is None:
        waited = any(status in PAUSED for status, _ in history)
        first_contact = (actor.subject == complaint.first_owner and complaint.escalation_level == 0
                         and complaint.reopen_count == 0 and not waited)
    complaint.resolved_at = now
    complaint.resolution_summary = resolution_in.summary
    complaint.root_cause = resolution_in.root_cause
    complaint.first_contact_resolution = first_contact
    clocks = await sla_clocks.refresh(session, complaint=complaint, policy=policy, now=now,
                                      history=[*history, (Status.resolved, now)])
    complaint.within_sla = sla_clocks.kept_all(clocks, at=now)
    stage(
        session,
        ComplaintResolved(
            customer_id=complaint.customer_id, complaint_id=complaint.id, category=complaint.category,
            severity=complaint.severity, tier=sla_clocks.tier_of(complaint), first_owner=complaint.first_owner,
            root_cause=complaint.root_cause, compensation=from_minor(complaint.compensation_minor),
            currency=policy.currency, first_contact_resolution=first_contact, within_sla=complaint.within_sla,
            resolved_at=now,
        ),
        source=SOURCE,
        time=now,
    )
    await session.flush()
    return complaint


async def reopen(
    *, session: AsyncSession, complaint: Complaint, reason: str, actor: Actor, now: datetime, currency: str
) -> Complaint:
    """Start a new cycle: the customer is owed a response and a resolution again."""
    _move(session, complaint, Status.reopened, actor=actor, reason=reason, now=now)
    complaint.cycle += 1
    complaint.reopen_count += 1
    complaint.first_response_at = complaint.resolved_at = complaint.closed_at = None
    complaint.first_contact_resolution = complaint.within_sla = None
    complaint.escalation_due_at = None
    await session.flush()
    await sla_clocks.refresh(session, complaint=complaint, policy=await policy_of(session, complaint, currency=currency),
                             now=now)
    stage(
        session,
        ComplaintReopened(customer_id=complaint.customer_id, complaint_id=complaint.id, reason=reason,
                          reopened_at=now),
        source=SOURCE,
        time=now,
    )
    return complaint


async def reopen_by_id(
    *, session: AsyncSession, complaint_id: uuid.UUID, reason: str, actor: Actor, now: datetime, currency: str
) -> Complaint:
    complaint = await get(session=session, complaint_id=complaint_id, lock=True)
    return await reopen(session=session, complaint=complaint, reason=reason, actor=actor, now=now, currency=currency)


async def transitions_of(
    *, session: AsyncSession, complaint_id: uuid.UUID, limit: int, cursor: str | None
) -> tuple[list[Transition], str | None]:
    await get(session=session, complaint_id=complaint_id)
    return await page_by(session, Transition, Transition.complaint_id == complaint_id, Transition.step, limit, cursor)


async def escalations_of(
    *, session: AsyncSession, complaint_id: uuid.UUID, limit: int, cursor: str | None
) -> tuple[list[Escalation], str | None]:
    await get(session=session, complaint_id=complaint_id)
    return await page_by(session, Escalation, Escalation.complaint_id == complaint_id, Escalation.level, limit, cursor)


async def page_by(  # type: ignore[no-untyped-def]
    session: AsyncSession, model, where: sa.ColumnElement[bool], order: sa.ColumnElement[int], limit: int,
    cursor: str | None,
):
    """In the complaint's own order (a step or level number), by keyset on it."""
    query = sa.select(model).where(where)
    if cursor is not None:
        [after] = decode_cursor(cursor, 1)
        if not isinstance(after, int):
            raise Unprocessable("Not a cursor this list gave out.", field="cursor", location="query")
        query = query.where(order > after)
    rows = list((await session.scalars(query.order_by(order).limit(limit + 1))).all())
    page = rows[:limit]
    following = encode_cursor(getattr(page[-1], order.key)) if len(rows) > limit else None
    return page, following
