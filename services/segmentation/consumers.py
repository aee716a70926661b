"""Every event that says something about a customer re-assesses them at once, whatever the population's size.

A batch first loads its customers' rows in one query (``prepare``); each handler then updates
the customer's facts and calls ``service.reassess``, which scores them against the cut points
in force (four comparisons per dimension) and announces what changed.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from services.segmentation import service
from services.segmentation.models import Purchase
from services.segmentation.service import Context, Segmenter
from shared import erasure
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
from shared.inbox import Handlers, Prepare
from shared.money import to_minor
from shared.service import Runtime

_CONTEXT = "segmentation.context"


def segmenter_of(runtime: Runtime) -> Segmenter:
    """One cache of policy and cut points per running service."""
    segmenter: Segmenter | None = getattr(runtime, "segmenter", None)
    if segmenter is None:
        segmenter = Segmenter()
        runtime.segmenter = segmenter  # type: ignore[attr-defined]
    return segmenter


def prepare(runtime: Runtime) -> Prepare:
    segmenter = segmenter_of(runtime)

    async def load_batch(envelopes: Sequence[Envelope[Event]], *, session: AsyncSession) -> None:
        session.info[_CONTEXT] = await segmenter.context(session=session)
        customers: list[uuid.UUID] = []
        purchases: list[uuid.UUID] = []
        for envelope in envelopes:
            customers.append(envelope.data.customer_id)
            if isinstance(envelope.data, PurchaseRefunded):
                purchases.append(envelope.data.purchase_id)
            elif isinstance(envelope.data, CustomerMerged):
                customers.append(envelope.data.merged_id)
        await service.prefetch(customers, purchases, session=session)
        # Handlers only add and change rows; flushing before each read would cost a round trip per event.
        session.autoflush = False

    return load_batch


def handlers(runtime: Runtime) -> Handlers:
    segmenter = segmenter_of(runtime)
    clock = runtime.clock

    async def context(*, session: AsyncSession) -> Context:
        ctx = session.info.get(_CONTEXT)
        if ctx is None:
            ctx = session.info[_CONTEXT] = await segmenter.context(session=session)
        return ctx

    async def on_registered(event: Envelope[CustomerRegistered], *, session: AsyncSession) -> None:
        ctx = await context(session=session)
        await service.segment_for(event.data.customer_id, session=session, ctx=ctx, now=clock.now())

    async def on_purchase(event: Envelope[PurchaseRecorded], *, session: AsyncSession) -> None:
        purchase, ctx, now = event.data, await context(session=session), clock.now()
        segment = await service.segment_for(purchase.customer_id, session=session, ctx=ctx, now=now)
        known_days = await service.purchase_days_of({purchase.customer_id}, session=session)
        session.add(Purchase(**service.count_purchase(segment, purchase, ctx, known_days=known_days)))
        await service.reassess(segment, session=session, ctx=ctx, now=now, cause=event)

    async def on_refund(event: Envelope[PurchaseRefunded], *, session: AsyncSession) -> None:
        refund, ctx, now = event.data, await context(session=session), clock.now()
        segment = await service.segment_for(refund.customer_id, session=session, ctx=ctx, now=now)
        purchase = await session.get(Purchase, refund.purchase_id)
        amount = to_minor(refund.amount)
        # A purchase we never saw (older than this service's ledger) is taken to be in the window;
        # one after a pinned analysis date is not in the figures yet, only in the ledger.
        in_window = purchase is None or ctx.in_window(purchase.purchased_at)
        counted = purchase is None or ctx.counts(purchase.purchased_at)
        if purchase is not None:
            amount = min(amount, purchase.amount_minor)
            purchase.amount_minor -= amount
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
                purchase.fully_refunded = True
                await service.refresh_purchase_span(segment, session=session, until=ctx.as_of)
        await service.reassess(segment, session=session, ctx=ctx, now=now, cause=event)

    async def on_complaint_opened(event: Envelope[ComplaintOpened], *, session: AsyncSession) -> None:
        complaint, ctx, now = event.data, await context(session=session), clock.now()
        segment = await service.segment_for(complaint.customer_id, session=session, ctx=ctx, now=now)
        points = ctx.policy.signal_points()[f"complaint_{complaint.severity.value}"]
        await service.add_signal(
            segment,
            session=session,
            kind=f"complaint_{complaint.severity.value}",
            points=points,
            occurred_at=complaint.opened_at,
            ctx=ctx,
            now=now,
            cause_id=event.id,
        )
        await service.reassess(segment, session=session, ctx=ctx, now=now, cause=event)

    async def on_complaint_resolved(event: Envelope[ComplaintResolved], *, session: AsyncSession) -> None:
        resolved, ctx, now = event.data, await context(session=session), clock.now()
        segment = await service.segment_for(resolved.customer_id, session=session, ctx=ctx, now=now)
        if not resolved.within_sla:
            await service.add_signal(
                segment,
                session=session,
                kind="resolved_outside_sla",
                points=ctx.policy.signals.resolved_outside_sla,
                occurred_at=resolved.resolved_at,
                ctx=ctx,
                now=now,
                cause_id=event.id,
            )
        await service.reassess(segment, session=session, ctx=ctx, now=now, cause=event)

    async def on_survey(event: Envelope[SurveyAnswered], *, session: AsyncSession) -> None:
        survey, ctx, now = event.data, await context(session=session), clock.now()
        segment = await service.segment_for(survey.customer_id, session=session, ctx=ctx, now=now)
        segment.last_csat = survey.csat
        if survey.nps is not None:
            segment.last_nps = survey.nps
        if survey.poor:
            await service.add_signal(
                segment,
                session=session,
                kind="poor_survey",
                points=ctx.policy.signals.poor_survey,
                occurred_at=survey.answered_at,
                ctx=ctx,
                now=now,
                cause_id=event.id,
            )
        await service.reassess(segment, session=session, ctx=ctx, now=now, cause=event)

    async def on_interaction(event: Envelope[InteractionLogged], *, session: AsyncSession) -> None:
        interaction, ctx, now = event.data, await context(session=session), clock.now()
        segment = await service.segment_for(interaction.customer_id, session=session, ctx=ctx, now=now)
        # Contact that is not hostile shows a prospect expecting something of us (the expectation stage).
        if interaction.sentiment is not Sentiment.negative:
            segment.engaged = True
        if interaction.signal is not None:
            await service.add_signal(
                segment,
                session=session,
                kind=interaction.signal.value,
                points=ctx.policy.signal_points()[interaction.signal.value],
                occurred_at=interaction.occurred_at,
                ctx=ctx,
                now=now,
                cause_id=event.id,
            )
        await service.reassess(segment, session=session, ctx=ctx, now=now, cause=event)

    async def on_erased(event: Envelope[CustomerErased], *, session: AsyncSession) -> None:
        await service.erase(session=session, customer_id=event.data.customer_id)
        await erasure.forget([event.data.customer_id], session=session)

    async def on_merged(event: Envelope[CustomerMerged], *, session: AsyncSession) -> None:
        ctx = await context(session=session)
        await service.merge(
            session=session,
            ctx=ctx,
            customer_id=event.data.customer_id,
            merged_id=event.data.merged_id,
            now=clock.now(),
            cause=event,
        )

    return {
        CustomerRegistered: on_registered,
        PurchaseRecorded: on_purchase,
        PurchaseRefunded: on_refund,
        ComplaintOpened: on_complaint_opened,
        ComplaintResolved: on_complaint_resolved,
        SurveyAnswered: on_survey,
        InteractionLogged: on_interaction,
        CustomerErased: on_erased,
        CustomerMerged: on_merged,
    }
