"""Interest matching: an announcement reaches each customer whose interests include its topic.

Matching runs in the scanner in batches ordered by customer id; the announcement row keeps
the last id matched, so a restart resumes where it stopped and nobody is messaged twice (the
messages' idempotency keys would catch a repeat anyway).
"""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.notify import policy_store
from services.notify.channels import configured_channels
from services.notify.errors import NotAnAnnouncementPlaybook, PlaybookDisabled
from services.notify.models import Announcement, Contact, Interest
from services.notify.playbooks import AnnouncementTrigger, MessageStep
from services.notify.policy import choose_channel
from services.notify.projection import recipients, topic_key
from services.notify.runs import Effects, Occasion, start
from services.notify.settings import NotifySettings

DEFAULT_PLAYBOOK = "interest_match"


async def create(
    *, session: AsyncSession, topic: str, title: str, body: str, playbook: str, actor: str, now: datetime
) -> Announcement:
    found = (await policy_store.in_force(session=session)).get(playbook)
    if found is None or not isinstance(found.definition.trigger, AnnouncementTrigger):
        raise NotAnAnnouncementPlaybook(playbook)
    if not found.definition.enabled:
        raise PlaybookDisabled(playbook)
    announcement = Announcement(
        id=uuid.uuid4(),
        topic=" ".join(topic.split()),
        title=title,
        body=body,
        playbook=playbook,
        state="matching",
        matched=0,
        skipped=0,
        created_by=actor,
        created_at=now,
    )
    session.add(announcement)
    await session.flush()
    return announcement


async def match_next_batch(
    *, session: AsyncSession, settings: NotifySettings, now: datetime, limit: int
) -> int:
    """Match one batch of the oldest announcement still matching; returns how many customers it looked at."""
    announcement = await session.scalar(
        sa.select(Announcement)
        .where(Announcement.state == "matching")
        .order_by(Announcement.created_at, Announcement.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if announcement is None:
        return 0
    playbook = (await policy_store.in_force(session=session)).get(announcement.playbook)
    if playbook is None or not playbook.definition.enabled:
        announcement.state, announcement.matched_at = "stopped", now
        return 0
    query = (
        sa.select(Contact)
        .join(Interest, Interest.customer_id == Contact.customer_id)
        .where(Interest.topic == topic_key(announcement.topic))
        .order_by(Contact.customer_id)
        .limit(limit)
    )
    if announcement.matched_through is not None:
        query = query.where(Contact.customer_id > announcement.matched_through)
    contacts = (await session.scalars(query)).all()
    policy = (await policy_store.policy(session=session)).policy
    reach = await recipients(
        [contact.customer_id for contact in contacts], session=session, contacts=contacts
    )
    configured = configured_channels(settings)
    message_steps = [step for step in playbook.definition.steps if isinstance(step, MessageStep)]
    material = {
        "announcement": {
            "id": str(announcement.id),
            "topic": announcement.topic,
            "title": announcement.title,
            "body": announcement.body,
        }
    }
    effects = Effects()
    matched = skipped = 0
    for contact in contacts:
        recipient = reach[contact.customer_id]
        # Honour consent here already, so that the uninterested-in-marketing cost nothing later;
        # the dispatcher checks again when each message goes.
        reachable = not message_steps or any(
            choose_channel(
                [c for c in step.channels if c in configured], recipient.reach, step.purpose
            ).channel
            for step in message_steps
        )
        if not reachable:
            skipped += 1
            continue
        occasion = Occasion(
            cause_key=f"announcement:{announcement.id}:{contact.customer_id}",
            customer_id=contact.customer_id,
            cause_event_id=None,
            facts={"announcement.topic": topic_key(announcement.topic)},
            material=material,
            announcement_id=announcement.id,
        )
        if await start(
            session=session,
            playbook=playbook,
            occasion=occasion,
            contact=contact,
            policy=policy,
            settings=settings,
            now=now,
            effects=effects,
        ):
            matched += 1
    await effects.write(session=session, now=now)
    announcement.matched += matched
    announcement.skipped += skipped
    if contacts:
        announcement.matched_through = contacts[-1].customer_id
    if len(contacts) < limit:
        announcement.state, announcement.matched_at = "matched", now
    return len(contacts)


async def get(*, session: AsyncSession, announcement_id: uuid.UUID) -> Announcement | None:
    return await session.get(Announcement, announcement_id)
