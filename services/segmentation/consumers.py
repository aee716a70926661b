"""Every event that says something about a customer re-assesses them at once, whatever the population's size.

One code path per event type, set-based, for a batch and a single event alike (a single event is
a batch of one). A batch reads its customers' rows and ledgers in one go into plain rows
(``applying.Batch``); it is cut into runs of consecutive events of one type, and each run goes to
its type's handler, in the order of the batch, so each customer's events apply in the order they
came; the handler updates the customer's facts, calls ``service.reassess`` (which scores them
against the cut points in force and stages what changed) and queues its rows; the batch ends with
one executemany per table. An erasure or a merge rewrites rows beyond those in memory: it writes
what is queued first, then runs its statements.
"""

from __future__ import annotations

import itertools
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.segmentation import service
from services.segmentation.applying import SEGMENT, Batch, Ledger
from services.segmentation.models import BehaviourSignal, CustomerSegment, Purchase, TierChange
from services.segmentation.service import Segmenter
from shared import erasure
from shared.clock import Clock
from shared.events import Envelope, Event
from shared.events.complaints import ComplaintOpened, ComplaintResolved, SurveyAnswered
from shared.events.customer import (
    CustomerErased,
    CustomerMerged,
    CustomerRegistered,
    InteractionLogged,
    PurchaseRecorded,
    PurchaseRefunded,
    Sentiment,
)
from shared.events.segmentation import MoveCause
from shared.inbox import ApplyBatch, Handlers
from shared.money import to_minor
from shared.service import Runtime


def segmenter_of(runtime: Runtime) -> Segmenter:
    """One cache of policy and cut points per running service."""
    segmenter: Segmenter | None = getattr(runtime, "segmenter", None)
    if segmenter is None:
        segmenter = Segmenter()
        runtime.segmenter = segmenter  # type: ignore[attr-defined]
    return segmenter


async def reassess(batch: Batch, segment: CustomerSegment, cause: Envelope[Any], **how: Any) -> None:
    await service.reassess(
        segment,
        session=batch.session,
        ctx=batch.ctx,
        now=batch.now,
        cause=cause,
        history=batch.history,
        **how,
    )


async def on_registered(batch: Batch, events: Sequence[Envelope[CustomerRegistered]]) -> None:
    for event in events:
        batch.segment(event.data.customer_id)


async def on_purchases(batch: Batch, events: Sequence[Envelope[PurchaseRecorded]]) -> None:
    ctx = batch.ctx
    for event in events:
        purchase = event.data
        segment = batch.segment(purchase.customer_id)
        new_day = batch.record_purchase(
            Ledger(
                purchase_id=purchase.purchase_id,
                customer_id=purchase.customer_id,
                amount_minor=to_minor(purchase.amount),
                purchased_at=purchase.purchased_at,
                fully_refunded=False,
            )
        )
        service.count_purchase(segment, purchase, ctx, new_day=new_day)
        await reassess(batch, segment, event)


async def on_refunds(batch: Batch, events: Sequence[Envelope[PurchaseRefunded]]) -> None:
    ctx = batch.ctx
    for event in events:
        refund = event.data
        segment = batch.segment(refund.customer_id)
        purchase = batch.purchases.get(refund.purchase_id)
        amount = to_minor(refund.amount)
        # A purchase we never saw (older than this service's ledger) is taken to be in the window;
        # one after a pinned analysis date is not in the figures yet, only in the ledger.
        in_window = purchase is None or ctx.in_window(purchase.purchased_at)
        counted = purchase is None or ctx.counts(purchase.purchased_at)
        if purchase is not None:
            amount = min(amount, purchase.amount_minor)
            purchase.amount_minor -= amount
            batch.changed(purchase)
        if counted:
            segment.lifetime_monetary_minor = max(0, segment.lifetime_monetary_minor - amount)
        if in_window:
            segment.monetary_minor = max(0, segment.monetary_minor - amount)
        if refund.fully_refunded and not (purchase is not None and purchase.fully_refunded):
            # A purchase refunded in full did not happen, as far as frequency is concerned.
            if counted:
                segment.lifetime_frequency = max(0, segment.lifetime_frequency - 1)
            if in_window:
                segment.frequency = max(0, segment.frequency - 1)
            if purchase is not None:
                batch.refund_in_full(purchase)
                batch.refresh_purchase_span(segment)
        await reassess(batch, segment, event)


async def on_complaints_opened(batch: Batch, events: Sequence[Envelope[ComplaintOpened]]) -> None:
    points = batch.ctx.policy.signal_points()
    for event in events:
        complaint = event.data
        segment = batch.segment(complaint.customer_id)
        kind = f"complaint_{complaint.severity.value}"
        batch.add_signal(
            segment, kind=kind, points=points[kind], occurred_at=complaint.opened_at, cause_id=event.id
        )
        await reassess(batch, segment, event)


async def on_complaints_resolved(batch: Batch, events: Sequence[Envelope[ComplaintResolved]]) -> None:
    for event in events:
        resolved = event.data
        segment = batch.segment(resolved.customer_id)
        if not resolved.within_sla:
            batch.add_signal(
                segment,
                kind="resolved_outside_sla",
                points=batch.ctx.policy.signals.resolved_outside_sla,
                occurred_at=resolved.resolved_at,
                cause_id=event.id,
            )
        await reassess(batch, segment, event)


async def on_surveys(batch: Batch, events: Sequence[Envelope[SurveyAnswered]]) -> None:
    for event in events:
        survey = event.data
        segment = batch.segment(survey.customer_id)
        segment.last_csat = survey.csat
        if survey.nps is not None:
            segment.last_nps = survey.nps
        if survey.poor:
            batch.add_signal(
                segment,
                kind="poor_survey",
                points=batch.ctx.policy.signals.poor_survey,
                occurred_at=survey.answered_at,
                cause_id=event.id,
            )
        await reassess(batch, segment, event)


async def on_interactions(batch: Batch, events: Sequence[Envelope[InteractionLogged]]) -> None:
    points = batch.ctx.policy.signal_points()
    for event in events:
        interaction = event.data
        segment = batch.segment(interaction.customer_id)
        # Contact that is not hostile shows a prospect expecting something of us (the expectation stage).
        if interaction.sentiment is not Sentiment.negative:
            segment.engaged = True
        if interaction.signal is not None:
            batch.add_signal(
                segment,
                kind=interaction.signal.value,
                points=points[interaction.signal.value],
                occurred_at=interaction.occurred_at,
                cause_id=event.id,
            )
        await reassess(batch, segment, event)


async def on_erased(batch: Batch, events: Sequence[Envelope[CustomerErased]]) -> None:
    """Forget everything held about the customers."""
    await batch.flush()
    erased = [event.data.customer_id for event in events]
    for table in (CustomerSegment, Purchase, BehaviourSignal, TierChange):
        column = table.__table__.c.customer_id
        await batch.session.execute(sa.delete(table.__table__).where(column.in_(erased)))
    for customer_id in erased:
        batch.forget(customer_id)
    await erasure.forget(erased, session=batch.session)


async def on_merged(batch: Batch, events: Sequence[Envelope[CustomerMerged]]) -> None:
    """What belonged to ``merged_id`` now belongs to ``customer_id``: purchases, signals, history, figures."""
    await batch.flush()
    for event in events:
        await _merge(batch, event)
        await batch.flush()


async def _merge(batch: Batch, event: Envelope[CustomerMerged]) -> None:
    customer_id, merged_id = event.data.customer_id, event.data.merged_id
    session = batch.session
    survivor = batch.segment(customer_id)
    duplicate = batch.rows.get(merged_id)
    for table in (Purchase, BehaviourSignal, TierChange):
        column = table.__table__.c.customer_id
        await session.execute(
            sa.update(table.__table__).where(column == merged_id).values({column.key: customer_id})
        )
    moved = batch.ledgers.get(merged_id, {})
    for purchase in list(moved.values()):
        purchase.customer_id = customer_id
        batch.ledgers[customer_id][purchase.purchase_id] = purchase
        if not purchase.fully_refunded:
            batch.days[customer_id][service.purchase_day(purchase.purchased_at)] += 1
    batch.ledgers[merged_id], batch.days[merged_id] = {}, Counter()
    if duplicate is None:
        return
    was_key_account = survivor.key_account
    survivor.frequency += duplicate.frequency
    survivor.monetary_minor += duplicate.monetary_minor
    survivor.lifetime_frequency += duplicate.lifetime_frequency
    survivor.lifetime_monetary_minor += duplicate.lifetime_monetary_minor
    survivor.first_purchase_at = _earliest(survivor.first_purchase_at, duplicate.first_purchase_at)
    survivor.last_purchase_at = _latest(survivor.last_purchase_at, duplicate.last_purchase_at)
    # Both may have bought on one day: count the days of the ledger they now share.
    shared_days = sum(1 for count in batch.days[customer_id].values() if count > 0)
    survivor.purchase_days = shared_days or (survivor.purchase_days + duplicate.purchase_days)
    survivor.engaged = survivor.engaged or duplicate.engaged
    survivor.signal_points += duplicate.signal_points
    if survivor.last_nps is None:
        survivor.last_nps, survivor.last_csat = duplicate.last_nps, duplicate.last_csat
    if duplicate.key_account and not survivor.key_account:
        survivor.key_account = True
        survivor.key_account_by, survivor.key_account_at = duplicate.key_account_by, duplicate.key_account_at
        survivor.key_account_reason = duplicate.key_account_reason
    await session.execute(sa.delete(SEGMENT).where(SEGMENT.c.customer_id == merged_id))
    batch.forget(merged_id)
    # Staff merged two records: nothing the customer did.
    await reassess(batch, survivor, event, was_key_account=was_key_account, move=MoveCause.manual)


def _earliest(a: Any, b: Any) -> Any:
    return min(x for x in (a, b) if x is not None) if (a or b) else None


def _latest(a: Any, b: Any) -> Any:
    return max(x for x in (a, b) if x is not None) if (a or b) else None


Handler = Callable[[Batch, Sequence[Envelope[Any]]], Awaitable[None]]
HANDLERS: dict[type[Event], Handler] = {
    CustomerRegistered: on_registered,
    PurchaseRecorded: on_purchases,
    PurchaseRefunded: on_refunds,
    ComplaintOpened: on_complaints_opened,
    ComplaintResolved: on_complaints_resolved,
    SurveyAnswered: on_surveys,
    InteractionLogged: on_interactions,
    CustomerErased: on_erased,
    CustomerMerged: on_merged,
}


def named_in(envelopes: Sequence[Envelope[Event]]) -> tuple[set[uuid.UUID], set[uuid.UUID]]:
    """The customers a batch names (both sides of a merge), and the purchases its refunds name."""
    customers: set[uuid.UUID] = set()
    purchases: set[uuid.UUID] = set()
    for envelope in envelopes:
        event = envelope.data
        customers.add(event.customer_id)
        if isinstance(event, PurchaseRefunded):
            purchases.add(event.purchase_id)
        elif isinstance(event, CustomerMerged):
            customers.add(event.merged_id)
    return customers, purchases


async def apply(
    envelopes: Sequence[Envelope[Event]], *, session: AsyncSession, segmenter: Segmenter, clock: Clock
) -> None:
    """Apply a batch (or a single event): load, run each run of one type through its handler, write."""
    ctx = await segmenter.context(session=session)
    customers, purchases = named_in(envelopes)
    batch = await Batch.load(
        session=session, ctx=ctx, now=clock.now(), customers=customers, purchases=purchases
    )
    for kind, run in itertools.groupby(envelopes, key=lambda envelope: type(envelope.data)):
        await HANDLERS[kind](batch, list(run))
    await batch.flush()


class Applier:
    """The consumer's entry points, bound to the service's policy cache and clock."""

    def __init__(self, segmenter: Segmenter, clock: Clock) -> None:
        self.segmenter, self.clock = segmenter, clock

    async def apply_batch(self, envelopes: Sequence[Envelope[Event]], *, session: AsyncSession) -> bool:
        await apply(envelopes, session=session, segmenter=self.segmenter, clock=self.clock)
        return True

    async def apply_one(self, envelope: Envelope[Any], *, session: AsyncSession) -> None:
        await apply([envelope], session=session, segmenter=self.segmenter, clock=self.clock)


def applier_of(runtime: Runtime) -> Applier:
    return Applier(segmenter_of(runtime), runtime.clock)


def handlers(runtime: Runtime) -> Handlers:
    """The types consumed; each event goes through ``apply_batch`` (a batch of one at the least)."""
    one = applier_of(runtime).apply_one
    return dict.fromkeys(HANDLERS, one)


def apply_batch(runtime: Runtime) -> ApplyBatch:
    return applier_of(runtime).apply_batch
