"""The deadline scanner: warns at a share of a promise's time, marks breaches, climbs the escalation ladder.

Due times live in the database (``complaint.next_check_at`` and the ``sla_clock`` rows), so a
restart loses nothing: the next pass finds whatever fell due meanwhile. Each pass claims a batch
of due complaints in one transaction; on PostgreSQL with ``FOR UPDATE SKIP LOCKED``, so replicas
take disjoint batches and an API request holding a complaint is not waited for. Events are
staged in the same transaction as the marks that say they were sent, so each goes out once.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession

from services.complaints import clocks as sla_clocks
from services.complaints import sla
from services.complaints.escalation import escalate
from services.complaints.models import Complaint, SlaClock
from services.complaints.models import idempotency_key as idempotency_keys
from services.complaints.policy import ComplaintPolicy
from services.complaints.service import SOURCE, policy_of
from services.complaints.settings import ComplaintsSettings
from shared import idempotency
from shared.clock import Clock
from shared.db import Database
from shared.events.complaints import SlaBreached, SlaTarget, SlaWarning
from shared.observability import Metrics
from shared.outbox import stage
from shared.service import Runtime, Worker
from shared.tracing import Tracing

log = logging.getLogger("csm.complaints.scanner")

SCANNER = "sla-scanner"
TARGET_NAMES = {
    SlaTarget.first_response: "first response",
    SlaTarget.on_site: "on-site visit",
    SlaTarget.resolution: "resolution",
}


@dataclass
class PassResult:
    """What one pass did."""

    complaints: int = 0
    warnings: int = 0
    breaches: int = 0
    escalations: int = 0


async def scan_once(*, db: Database, now: datetime, batch_size: int, currency: str) -> PassResult:
    """Claim up to ``batch_size`` complaints with something due by ``now`` and act on them."""
    result = PassResult()
    async with db.unit_of_work() as session:
        complaints = (
            await session.scalars(
                sa.select(Complaint)
                .where(Complaint.next_check_at.is_not(None), Complaint.next_check_at <= now)
                .order_by(Complaint.next_check_at)
                .limit(batch_size)
                .with_for_update(skip_locked=True)
            )
        ).all()
        if not complaints:
            return result
        clocks: dict[tuple[object, int], dict[SlaTarget, SlaClock]] = {}
        for clock in (
            await session.scalars(
                sa.select(SlaClock).where(SlaClock.complaint_id.in_([c.id for c in complaints]))
            )
        ).all():
            clocks.setdefault((clock.complaint_id, clock.cycle), {})[SlaTarget(clock.target)] = clock
        for complaint in complaints:
            policy = await policy_of(complaint, session=session, currency=currency)
            await _check(
                complaint,
                clocks.get((complaint.id, complaint.cycle), {}),
                policy,
                now,
                result,
                session=session,
            )
            result.complaints += 1
    return result


async def _check(
    complaint: Complaint,
    clocks: dict[SlaTarget, SlaClock],
    policy: ComplaintPolicy,
    now: datetime,
    result: PassResult,
    *,
    session: AsyncSession,
) -> None:
    tier = sla_clocks.tier_of(complaint)
    for target, clock in clocks.items():
        if clock.met_at is not None or clock.breached_at is not None or clock.due_at is None:
            continue
        if clock.due_at <= now:
            # Past due: a late warning would say nothing the breach does not.
            clock.breached_at = clock.due_at
            clock.warned_at = clock.warned_at or now
            stage(
                SlaBreached(
                    customer_id=complaint.customer_id,
                    complaint_id=complaint.id,
                    target=target,
                    due_at=clock.due_at,
                    tier=tier,
                    first_owner=complaint.first_owner,
                    breached_at=clock.due_at,
                ),
                session=session,
                source=SOURCE,
                time=now,
            )
            result.breaches += 1
        elif clock.warned_at is None and clock.warn_at is not None and clock.warn_at <= now:
            clock.warned_at = now
            stage(
                SlaWarning(
                    customer_id=complaint.customer_id,
                    complaint_id=complaint.id,
                    target=target,
                    due_at=clock.due_at,
                    used_share=await _used_share(complaint, clock, policy, now, session=session),
                    tier=tier,
                    first_owner=complaint.first_owner,
                ),
                session=session,
                source=SOURCE,
                time=now,
            )
            result.warnings += 1
    sla_clocks.schedule(complaint=complaint, clocks=clocks, policy=policy)
    # Catch up after downtime: climb as many rungs as fell due, each timed from the one below.
    while complaint.escalation_due_at is not None and complaint.escalation_due_at <= now:
        [broken, *_] = sla_clocks.in_breach(clocks)
        target = SlaTarget(broken.target)
        await escalate(
            session=session,
            complaint=complaint,
            policy=policy,
            actor=SCANNER,
            now=now,
            reason=f"{TARGET_NAMES[target]} promise broken (due {broken.due_at:%Y-%m-%d %H:%M} UTC)",
            target=target,
        )
        result.escalations += 1
        sla_clocks.schedule(complaint=complaint, clocks=clocks, policy=policy)


async def _used_share(
    complaint: Complaint, clock: SlaClock, policy: ComplaintPolicy, now: datetime, *, session: AsyncSession
) -> float:
    history = await sla_clocks.history_of(complaint.id, session=session)
    timeline = sla_clocks.timeline_for(complaint, history, policy)
    calendar = policy.calendar(clock.calendar) if clock.calendar in policy.calendars else sla.ALWAYS
    return round(sla.used_share(calendar, timeline, timedelta(seconds=clock.target_seconds), now), 4)


async def purge_idempotency_keys(*, db: Database, now: datetime, ttl: timedelta) -> int:
    async with db.unit_of_work() as session:
        return await idempotency.purge(idempotency_keys, session=session, before=now - ttl)


class DeadlineScanner:
    """The worker: passes until nothing is due, then sleeps for the scan interval."""

    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        settings: ComplaintsSettings,
        metrics: Metrics,
        tracing: Tracing,
    ) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.tracing = tracing
        registry = metrics.registry
        # What the dashboards and alert rules watch: promises about to be missed, and missed.
        self.warnings = Counter(
            "csm_sla_warnings_total", "SLA warnings raised by the scanner", registry=registry
        )
        self.breaches = Counter(
            "csm_sla_breaches_total", "SLA breaches marked by the scanner", registry=registry
        )
        self.escalations = Counter(
            "csm_escalations_total", "Escalations up the ladder by the scanner", registry=registry
        )

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        next_purge = loop.time()
        while True:
            while True:
                with self.tracing.scanning("sla scan") as found:
                    done = await scan_once(
                        db=self.db,
                        now=self.clock.now(),
                        batch_size=self.settings.scan_batch_size,
                        currency=self.settings.common.currency,
                    )
                    if done.complaints:
                        found()
                self.warnings.inc(done.warnings)
                self.breaches.inc(done.breaches)
                self.escalations.inc(done.escalations)
                if done.complaints:
                    log.info(
                        "sla scan: %d complaints, %d warnings, %d breaches, %d escalations",
                        done.complaints,
                        done.warnings,
                        done.breaches,
                        done.escalations,
                    )
                if done.complaints < self.settings.scan_batch_size:
                    break
            if loop.time() >= next_purge:
                await purge_idempotency_keys(
                    db=self.db, now=self.clock.now(), ttl=timedelta(hours=self.settings.idempotency_ttl_hours)
                )
                next_purge = loop.time() + 3600
            await asyncio.sleep(self.settings.scan_interval_seconds)


def workers(runtime: Runtime) -> list[Worker]:
    settings = runtime.settings
    assert isinstance(settings, ComplaintsSettings)
    scanner = DeadlineScanner(
        db=runtime.db,
        clock=runtime.clock,
        settings=settings,
        metrics=runtime.metrics,
        tracing=runtime.tracing,
    )
    return [Worker(SCANNER, scanner.run)]
