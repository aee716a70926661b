"""A complaint's SLA clocks in the database: computed by the pure ``sla`` module, stored as due times.

``refresh`` re-reads every promise of the current cycle after anything that can move it (a
status change, a tier or severity change, a visit); ``schedule`` sets when the scanner must look
at the complaint next. Nothing here waits: the due times are the whole state.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.complaints import sla
from services.complaints.models import Complaint, SlaClock, Transition
from services.complaints.policy import ComplaintPolicy, TargetRule
from services.complaints.workflow import PAUSED, Status, is_open
from shared.events.complaints import ComplaintRetargeted, Severity, SlaTarget
from shared.events.segmentation import Tier
from shared.outbox import stage

SOURCE = "/csm/complaints"

History = list[tuple[Status, datetime]]


def tier_of(complaint: Complaint) -> Tier | None:
    return Tier(complaint.tier) if complaint.tier else None


def rule_for(complaint: Complaint, policy: ComplaintPolicy) -> TargetRule:
    return policy.target_for(tier_of(complaint), Severity(complaint.severity))


async def history_of(complaint_id: object, *, session: AsyncSession) -> History:
    rows = await session.execute(
        sa.select(Transition.to_status, Transition.at)
        .where(Transition.complaint_id == complaint_id, Transition.from_status.is_not(None))
        .order_by(Transition.step)
    )
    return [(Status(status), at) for status, at in rows.all()]


def timeline_for(complaint: Complaint, history: History, policy: ComplaintPolicy) -> sla.Timeline:
    return sla.timeline_of(history, opened_at=complaint.opened_at, reopen=policy.reopen)


async def clocks_of(complaint: Complaint, *, session: AsyncSession) -> dict[SlaTarget, SlaClock]:
    rows = await session.scalars(
        sa.select(SlaClock).where(SlaClock.complaint_id == complaint.id, SlaClock.cycle == complaint.cycle)
    )
    return {SlaTarget(clock.target): clock for clock in rows.all()}


def _met_at(complaint: Complaint, target: SlaTarget, cycle_start: datetime) -> datetime | None:
    met = {
        SlaTarget.first_response: complaint.first_response_at,
        SlaTarget.on_site: complaint.visited_at,
        SlaTarget.resolution: complaint.resolved_at,
    }[target]
    # A visit before a reopen does not keep the promise of the new cycle.
    return met if met is not None and met >= cycle_start else None


async def refresh(
    *,
    session: AsyncSession,
    complaint: Complaint,
    policy: ComplaintPolicy,
    now: datetime,
    history: History | None = None,
) -> dict[SlaTarget, SlaClock]:
    """Re-read the current cycle's promises under ``policy`` and store their due times."""
    if history is None:
        history = await history_of(complaint.id, session=session)
    clocks = await clocks_of(complaint, session=session)
    wanted = _wanted(complaint)
    for target, clock in list(clocks.items()):
        if target not in wanted:
            await session.delete(clock)
            del clocks[target]
    for target in wanted:
        if target not in clocks:
            clocks[target] = SlaClock(complaint_id=complaint.id, cycle=complaint.cycle, target=target.value)
            session.add(clocks[target])
    _read_promises(complaint, clocks, policy=policy, history=history)
    schedule(complaint=complaint, clocks=clocks, policy=policy)
    return clocks


def promises_of_new(complaint: Complaint, *, policy: ComplaintPolicy) -> dict[SlaTarget, SlaClock]:
    """The clocks of a complaint just taken (no history, no clocks yet), not added to any session:
    intake writes them itself, with the complaint."""
    clocks = {
        target: SlaClock(
            complaint_id=complaint.id,
            cycle=complaint.cycle,
            target=target.value,
            warned_at=None,
            breached_at=None,
        )
        for target in _wanted(complaint)
    }
    _read_promises(complaint, clocks, policy=policy, history=[])
    schedule(complaint=complaint, clocks=clocks, policy=policy)
    return clocks


def _wanted(complaint: Complaint) -> list[SlaTarget]:
    wanted = [SlaTarget.first_response, SlaTarget.resolution]
    if complaint.visit_required:
        wanted.insert(1, SlaTarget.on_site)
    return wanted


def _read_promises(
    complaint: Complaint, clocks: dict[SlaTarget, SlaClock], *, policy: ComplaintPolicy, history: History
) -> None:
    """Set each clock's target, calendar, due time, warning time and when it was met."""
    rule = rule_for(complaint, policy)
    calendar = policy.calendar(rule.calendar)
    timeline = timeline_for(complaint, history, policy)
    # Whatever the reopen rule does to the other promises, a reopened complaint is answered like a
    # new one: its first response is always owed from the reopen.
    response_timeline = sla.timeline_of(history, opened_at=complaint.opened_at, reopen=sla.ReopenRule.restart)
    for target, clock in clocks.items():
        duration = rule.duration(target.value)
        its_timeline = response_timeline if target is SlaTarget.first_response else timeline
        reading = sla.read(
            calendar,
            its_timeline,
            duration,
            warning_share=policy.warning_share,
            met_at=_met_at(complaint, target, response_timeline.started_at),
        )
        clock.target_seconds = int(duration.total_seconds())
        clock.calendar = rule.calendar
        clock.due_at, clock.warn_at, clock.met_at = reading.due_at, reading.warn_at, reading.met_at


def announce_retarget(
    *,
    session: AsyncSession,
    complaint: Complaint,
    clocks: dict[SlaTarget, SlaClock],
    previous_tier: Tier | None,
    reason: str,
    now: datetime,
) -> None:
    """Tell the others (notify states the promise to the customer) that it changed."""
    first_response, resolution = clocks.get(SlaTarget.first_response), clocks.get(SlaTarget.resolution)
    stage(
        ComplaintRetargeted(
            customer_id=complaint.customer_id,
            complaint_id=complaint.id,
            previous_tier=previous_tier,
            tier=tier_of(complaint),
            severity=Severity(complaint.severity),
            reason=reason,
            first_response_due_at=first_response.due_at
            if first_response and not first_response.met_at
            else None,
            resolution_due_at=resolution.due_at if resolution else None,
            retargeted_at=now,
        ),
        session=session,
        source=SOURCE,
        time=now,
    )


def in_breach(clocks: dict[SlaTarget, SlaClock]) -> list[SlaClock]:
    """Broken promises not yet kept, earliest breach first."""
    broken = [clock for clock in clocks.values() if clock.breached_at is not None and clock.met_at is None]
    return sorted(broken, key=lambda clock: clock.breached_at or datetime.min)


def schedule(*, complaint: Complaint, clocks: dict[SlaTarget, SlaClock], policy: ComplaintPolicy) -> None:
    """Set when the next escalation is due and when the scanner must next look at the complaint."""
    status = Status(complaint.status)
    broken = in_breach(clocks)
    if not is_open(status) or status in PAUSED or not broken:
        # The ladder climbs only while a promise stays broken and the complaint is in our hands.
        complaint.escalation_due_at = None
    elif complaint.escalation_due_at is None:
        above = policy.next_level(complaint.escalation_level, key_account=complaint.key_account)
        if above is not None:
            assert broken[0].breached_at is not None
            anchor = max(broken[0].breached_at, complaint.escalated_at or broken[0].breached_at)
            complaint.escalation_due_at = anchor + policy.escalation[above].after
    pending: list[datetime] = []
    if is_open(status):
        for clock in clocks.values():
            if clock.met_at is not None or clock.breached_at is not None or clock.due_at is None:
                continue
            if clock.warned_at is None and clock.warn_at is not None:
                pending.append(clock.warn_at)
            pending.append(clock.due_at)
    if complaint.escalation_due_at is not None:
        pending.append(complaint.escalation_due_at)
    complaint.next_check_at = min(pending) if pending else None


def kept_all(clocks: dict[SlaTarget, SlaClock], *, at: datetime) -> bool:
    """Whether every promise of the cycle was kept by ``at``: none breached, none met or due late."""
    for clock in clocks.values():
        if clock.breached_at is not None:
            return False
        finished = clock.met_at or at
        if clock.due_at is not None and finished > clock.due_at:
            return False
    return True
