"""Events the complaints service follows, so that intake never waits on another service."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.complaints.models import CustomerTier
from shared.events import Envelope
from shared.events.segmentation import TierChanged
from shared.inbox import Handlers
from shared.service import Runtime


async def on_tier_changed(session: AsyncSession, event: Envelope[TierChanged]) -> None:
    change = event.data
    projection = await session.get(CustomerTier, change.customer_id)
    if projection is None:
        session.add(CustomerTier(customer_id=change.customer_id, tier=change.tier.value, key_account=change.key_account))
    else:
        projection.tier = change.tier.value
        projection.key_account = change.key_account


def handlers(_runtime: Runtime) -> Handlers:
    return {TierChanged: on_tier_changed}
