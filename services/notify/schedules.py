"""Calendar playbooks (a quarterly key-account visit): once per period for every customer they select.

The scanner looks once when a period begins and again each day of it (so a customer who
becomes a key account mid-quarter still gets this quarter's visit); the mark of the last look
is in the database and the run's cause key names the period, so no customer gets two.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.notify import policy_store
from services.notify.facts import customer_facts
from services.notify.models import Contact, ScheduleMark
from services.notify.playbooks import ScheduleTrigger, matches, period_label
from services.notify.policy import zone
from services.notify.projection import contact_as_mapping
from services.notify.runs import Effects, Occasion, start
from services.notify.settings import NotifySettings

LOOK_AGAIN_AFTER = timedelta(days=1)
BATCH = 1000


async def fan_out(*, session: AsyncSession, settings: NotifySettings, now: datetime) -> int:
    """Start due calendar playbooks; returns how many runs started."""
    policy = (await policy_store.policy(session=session)).policy
    started = 0
    for playbook in (await policy_store.in_force(session=session)).values():
        trigger = playbook.definition.trigger
        if not isinstance(trigger, ScheduleTrigger) or not playbook.definition.enabled:
            continue
        period = period_label(now.astimezone(zone(policy.default_time_zone, "UTC")), trigger.every)
        mark = await session.get(ScheduleMark, playbook.key, with_for_update=True)
        if mark is not None and mark.period == period and now - mark.checked_at < LOOK_AGAIN_AFTER:
            continue
        after = None
        while True:
            query = sa.select(Contact).where(Contact.known).order_by(Contact.customer_id).limit(BATCH)
            if after is not None:
                query = query.where(Contact.customer_id > after)
            contacts = (await session.scalars(query)).all()
            effects = Effects()
            for contact in contacts:
                if not matches(playbook.definition, customer_facts(contact_as_mapping(contact))):
                    continue
                occasion = Occasion(
                    cause_key=f"schedule:{period}:{contact.customer_id}",
                    customer_id=contact.customer_id,
                    cause_event_id=None,
                    facts={},
                    material={"period": period},
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
                    started += 1
            await effects.write(session=session, now=now)
            if len(contacts) < BATCH:
                break
            after = contacts[-1].customer_id
        if mark is None:
            session.add(ScheduleMark(playbook=playbook.key, period=period, checked_at=now))
        else:
            mark.period, mark.checked_at = period, now
    return started
