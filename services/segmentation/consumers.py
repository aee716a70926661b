"""Purchases and refunds move a customer's aggregates and, maybe, their tier: at once, per event."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.segmentation import service
from services.segmentation.settings import SegmentationSettings
from shared.events import Envelope
from shared.events.customer import CustomerRegistered, PurchaseRecorded, PurchaseRefunded
from shared.inbox import Handlers
from shared.money import to_minor
from shared.service import Runtime


def handlers(runtime: Runtime) -> Handlers:
    settings = runtime.settings
    assert isinstance(settings, SegmentationSettings)
    rules, version, clock = settings.tier_rules, settings.policy_version, runtime.clock

    async def on_registered(session: AsyncSession, event: Envelope[CustomerRegistered]) -> None:
        await service.segment_for(
            session, event.data.customer_id, rules=rules, policy_version=version, now=clock.now()
        )

    async def on_purchase(session: AsyncSession, event: Envelope[PurchaseRecorded]) -> None:
        purchase = event.data
        now = clock.now()
        segment = await service.segment_for(
            session, purchase.customer_id, rules=rules, policy_version=version, now=now
        )
        segment.frequency += 1
        segment.monetary_minor += to_minor(purchase.amount)
        if segment.first_purchase_at is None or purchase.purchased_at < segment.first_purchase_at:
            segment.first_purchase_at = purchase.purchased_at
        if segment.last_purchase_at is None or purchase.purchased_at > segment.last_purchase_at:
            segment.last_purchase_at = purchase.purchased_at
        await service.retier(session, segment, rules=rules, policy_version=version, cause=event, now=now)

    async def on_refund(session: AsyncSession, event: Envelope[PurchaseRefunded]) -> None:
        refund = event.data
        now = clock.now()
        segment = await service.segment_for(session, refund.customer_id, rules=rules, policy_version=version, now=now)
        segment.monetary_minor = max(0, segment.monetary_minor - to_minor(refund.amount))
        if refund.fully_refunded:
            # A purchase refunded in full did not happen, as far as frequency is concerned.
            segment.frequency = max(0, segment.frequency - 1)
        await service.retier(session, segment, rules=rules, policy_version=version, cause=event, now=now)

    return {CustomerRegistered: on_registered, PurchaseRecorded: on_purchase, PurchaseRefunded: on_refund}
