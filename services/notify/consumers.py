"""Events that make notify reach out: a new tier, a complaint received."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.notify import service
from shared.events import Envelope
from shared.events.complaints import ComplaintOpened
from shared.events.customer import Purpose
from shared.events.segmentation import TierChanged, tier_rank
from shared.inbox import Handlers
from shared.service import Runtime


def handlers(runtime: Runtime) -> Handlers:
    clock = runtime.clock

    async def on_tier_changed(session: AsyncSession, event: Envelope[TierChanged]) -> None:
        change = event.data
        upgraded = change.previous_tier is None or tier_rank(change.tier) < tier_rank(change.previous_tier)
        tier = change.tier.value.title()
        title = f"Welcome to {tier}" if upgraded else f"Your membership is now {tier}"
        body = f"Thank you for being with us. Your membership is now {tier}; we are here whenever you need us."
        await service.send_in_app(
            session,
            cause=event,
            playbook="tier_changed",
            step="announce",
            purpose=Purpose.service,
            title=title,
            body=body,
            now=clock.now(),
        )

    async def on_complaint_opened(session: AsyncSession, event: Envelope[ComplaintOpened]) -> None:
        await service.send_in_app(
            session,
            cause=event,
            playbook="complaint_acknowledgement",
            step="acknowledge",
            purpose=Purpose.service,
            title="We have received your complaint",
            body="We are sorry for the trouble. Your complaint is with us and one person owns it until it "
            "is resolved; we will be in touch soon.",
            now=clock.now(),
        )

    return {TierChanged: on_tier_changed, ComplaintOpened: on_complaint_opened}
