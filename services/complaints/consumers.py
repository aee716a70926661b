"""Events the complaints service follows: tiers (so intake never waits on another service), customers'
addresses (so their mail finds them), erasure and merging, and complaints other systems hand over on
the intake topic."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.complaints import customers, service
from services.complaints.models import Complaint
from services.complaints.schemas import ComplaintCreate
from shared import erasure
from shared.events import Envelope
from shared.events.complaints import ComplaintSubmitted
from shared.events.customer import (
    ContactChanged,
    CustomerErased,
    CustomerMerged,
    CustomerRegistered,
    CustomerUpdated,
)
from shared.events.segmentation import TierChanged
from shared.inbox import Handlers
from shared.service import Runtime


def handlers(runtime: Runtime) -> Handlers:
    currency = runtime.settings.common.currency
    clock = runtime.clock

    async def on_tier_changed(event: Envelope[TierChanged], *, session: AsyncSession) -> None:
        change = event.data
        await customers.set_tier(
            session=session,
            customer_id=change.customer_id,
            tier=change.tier,
            key_account=change.key_account,
            now=clock.now(),
            currency=currency,
        )

    async def on_profile(
        event: Envelope[CustomerRegistered | CustomerUpdated], *, session: AsyncSession
    ) -> None:
        await customers.set_address(
            session=session,
            customer_id=event.data.customer_id,
            source="profile",
            email=event.data.profile.email,
        )

    async def on_contact(event: Envelope[ContactChanged], *, session: AsyncSession) -> None:
        change = event.data
        await customers.set_address(
            session=session,
            customer_id=change.customer_id,
            source=f"contact:{change.contact_id}",
            email=None if change.removed else change.email,
        )

    async def on_erased(event: Envelope[CustomerErased], *, session: AsyncSession) -> None:
        await customers.erase(session=session, customer_id=event.data.customer_id, now=clock.now())
        await erasure.forget([event.data.customer_id], session=session)

    async def on_merged(event: Envelope[CustomerMerged], *, session: AsyncSession) -> None:
        await customers.merge(
            session=session,
            customer_id=event.data.customer_id,
            merged_id=event.data.merged_id,
            now=clock.now(),
            currency=currency,
        )

    async def on_submitted(event: Envelope[ComplaintSubmitted], *, session: AsyncSession) -> None:
        submitted = event.data
        if await session.get(Complaint, submitted.submission_id) is not None:
            return  # submitted again: the complaint exists already
        complaint_in = ComplaintCreate(
            customer_id=submitted.customer_id,
            channel=submitted.channel,
            category=submitted.category,
            severity=submitted.severity,
            description=submitted.description,
            desired_outcome=submitted.desired_outcome,
            attachments=list(submitted.attachments),
            visit_required=submitted.visit_required,
        )
        await service.open_complaint(
            session=session,
            complaint_in=complaint_in,
            first_owner=submitted.received_by or event.source,
            now=clock.now(),
            currency=currency,
            source=event.source,
            complaint_id=submitted.submission_id,
            opened_at=submitted.submitted_at,
        )

    return {
        TierChanged: on_tier_changed,
        CustomerRegistered: on_profile,
        CustomerUpdated: on_profile,
        ContactChanged: on_contact,
        CustomerErased: on_erased,
        CustomerMerged: on_merged,
        ComplaintSubmitted: on_submitted,
    }
