"""Events notify listens to: customer facts to keep, and occasions that start playbooks."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy.ext.asyncio import AsyncSession

from services.notify import policy_store, projection, replies
from services.notify.dispatch import ring_after_commit, send_after_commit
from services.notify.facts import complaint_facts, event_facts
from services.notify.models import ComplaintRef, Contact
from services.notify.playbooks import EventTrigger
from services.notify.runs import Effects, Occasion, start
from services.notify.settings import NotifySettings
from shared import erasure
from shared.events import Envelope, Event
from shared.events.complaints import (
    ComplaintEscalated,
    ComplaintOpened,
    ComplaintReopened,
    ComplaintReplied,
    ComplaintResolved,
    SlaBreached,
    SurveyAnswered,
)
from shared.events.customer import (
    ConsentChanged,
    CustomerErased,
    CustomerMerged,
    CustomerRegistered,
    CustomerUpdated,
    InterestsChanged,
    PurchaseRecorded,
)
from shared.events.segmentation import RiskChanged, TierChanged
from shared.inbox import Handlers
from shared.service import Runtime


def complaint_material(event: Event, ref: ComplaintRef | None) -> dict[str, Any]:
    """What a template may say about the complaint an event is about."""
    complaint_id = event.complaint_id  # type: ignore[attr-defined]
    material: dict[str, Any] = {
        "id": str(complaint_id),
        "reference": str(complaint_id)[:8].upper(),
        "first_owner": (ref.first_owner if ref else None) or getattr(event, "first_owner", None),
        "category": ref.category if ref else None,
        "first_response_due_at": None,
        "promise": None,
    }
    if isinstance(event, ComplaintOpened) and event.first_response_due_at is not None:
        material["first_response_due_at"] = event.first_response_due_at.isoformat()
        # The tier's response promise, as the complaints service computed it for this complaint.
        material["promise"] = max(0.0, (event.first_response_due_at - event.opened_at).total_seconds())
    return material


def handlers(runtime: Runtime) -> Handlers:
    settings = cast(NotifySettings, runtime.settings)
    clock = runtime.clock

    async def run_playbooks(
        envelope: Envelope[Any], ref: ComplaintRef | None = None, *, session: AsyncSession
    ) -> None:
        if getattr(envelope.data, "imported", False):
            # Imported history (a migration from the company's old system) is not
            # something the customer just did: nobody is thanked or called for it.
            return
        playbooks = [
            playbook
            for playbook in (await policy_store.in_force(session=session)).values()
            if isinstance(playbook.definition.trigger, EventTrigger)
            and playbook.definition.trigger.event == envelope.type
        ]
        if not playbooks:
            return
        event = envelope.data
        await session.flush()
        contact = await session.get(Contact, event.customer_id)
        material: dict[str, Any] = {"event": event.model_dump(mode="json")}
        facts = event_facts(event)
        if hasattr(event, "complaint_id"):
            material["complaint"] = complaint_material(event, ref)
            facts |= complaint_facts({"status": ref.status, "category": ref.category} if ref else None)
        occasion = Occasion(
            cause_key=str(envelope.id),
            customer_id=event.customer_id,
            cause_event_id=envelope.id,
            facts=facts,
            material=material,
        )
        now = clock.now()
        policy = (await policy_store.policy(session=session)).policy
        effects = Effects()
        for playbook in playbooks:
            await start(
                session=session,
                playbook=playbook,
                occasion=occasion,
                contact=contact,
                policy=policy,
                settings=settings,
                now=now,
                effects=effects,
            )
        if effects:
            # An acknowledgement leaves as this transaction commits, claimed in it.
            made_due = [row["id"] for row in effects.notifications if row["due_at"] <= now]
            await effects.write(session=session, now=now)
            send_after_commit(made_due, session=session)

    async def on_profile(
        event: Envelope[CustomerRegistered | CustomerUpdated], *, session: AsyncSession
    ) -> None:
        await projection.apply_profile(
            session=session, customer_id=event.data.customer_id, profile=event.data.profile, at=event.time
        )
        if isinstance(event.data, CustomerRegistered):
            await run_playbooks(event, session=session)
        # A message may be waiting for this profile.
        ring_after_commit(session=session)

    async def on_erased(event: Envelope[CustomerErased], *, session: AsyncSession) -> None:
        await projection.erase(session=session, customer_id=event.data.customer_id)
        await erasure.forget([event.data.customer_id], session=session)

    async def on_merged(event: Envelope[CustomerMerged], *, session: AsyncSession) -> None:
        await projection.merge(session=session, survivor=event.data.customer_id, merged=event.data.merged_id)

    async def on_consent(event: Envelope[ConsentChanged], *, session: AsyncSession) -> None:
        change = event.data
        await projection.apply_consent(
            session=session,
            customer_id=change.customer_id,
            channel=change.channel,
            purpose=change.purpose,
            granted=change.granted,
            at=change.changed_at,
        )

    async def on_interests(event: Envelope[InterestsChanged], *, session: AsyncSession) -> None:
        await projection.apply_interests(
            session=session,
            customer_id=event.data.customer_id,
            interests=event.data.interests,
            at=event.data.changed_at,
        )

    async def on_purchase(event: Envelope[PurchaseRecorded], *, session: AsyncSession) -> None:
        await run_playbooks(event, session=session)

    async def on_tier(event: Envelope[TierChanged], *, session: AsyncSession) -> None:
        change = event.data
        await projection.apply_segment(
            session=session,
            customer_id=change.customer_id,
            tier=change.tier,
            key_account=change.key_account,
            segment=change.segment,
            stage=change.stage,
        )
        await run_playbooks(event, session=session)

    async def on_risk(event: Envelope[RiskChanged], *, session: AsyncSession) -> None:
        await projection.apply_segment(
            session=session, customer_id=event.data.customer_id, risk=event.data.risk, tier=event.data.tier
        )
        await run_playbooks(event, session=session)

    async def on_replied(event: Envelope[ComplaintReplied], *, session: AsyncSession) -> None:
        policy = (await policy_store.policy(session=session)).policy
        await replies.send_reply(
            event, session=session, default_locale=policy.default_locale, now=clock.now()
        )
        ring_after_commit(session=session)

    def complaint_handler(status: str | None) -> Any:
        async def on_complaint(event: Envelope[Any], *, session: AsyncSession) -> None:
            data = event.data
            category = getattr(data, "category", None)
            ref = await projection.apply_complaint(
                session=session,
                complaint_id=data.complaint_id,
                customer_id=data.customer_id,
                status=status,
                at=event.time,
                first_owner=getattr(data, "first_owner", None),
                category=category.value if category is not None else None,
            )
            await run_playbooks(event, ref, session=session)

        return on_complaint

    return {
        CustomerRegistered: on_profile,
        CustomerUpdated: on_profile,
        CustomerErased: on_erased,
        CustomerMerged: on_merged,
        ConsentChanged: on_consent,
        InterestsChanged: on_interests,
        PurchaseRecorded: on_purchase,
        TierChanged: on_tier,
        RiskChanged: on_risk,
        ComplaintOpened: complaint_handler("open"),
        ComplaintResolved: complaint_handler("resolved"),
        ComplaintReopened: complaint_handler("reopened"),
        ComplaintEscalated: complaint_handler(None),
        SlaBreached: complaint_handler(None),
        SurveyAnswered: complaint_handler(None),
        ComplaintReplied: on_replied,
    }
