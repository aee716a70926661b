"""Events the customer service follows to keep its 360 view current without calling anyone."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.customer.models import Customer
from shared.events import Envelope
from shared.events.segmentation import TierChanged
from shared.inbox import Handlers
from shared.service import Runtime


async def on_tier_changed(session: AsyncSession, event: Envelope[TierChanged]) -> None:
    customer = await session.get(Customer, event.data.customer_id)
    if customer is not None:
        customer.tier = event.data.tier.value


def handlers(_runtime: Runtime) -> Handlers:
    return {TierChanged: on_tier_changed}
