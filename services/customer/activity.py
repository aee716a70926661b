"""What the customer does and wants: interactions and behavioural signals, interests, consent.
Only flushes; the caller commits."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.customer import service
from services.customer.ids import uuid7
from services.customer.models import Consent, ConsentChange, Interaction, Interest, InterestChange
from services.customer.record_schemas import (
    ConsentChangeRead,
    ConsentRead,
    ConsentUpdate,
    InteractionCreate,
    InteractionRead,
    InterestChangeRead,
    InterestRead,
    InterestsUpdate,
)
from services.customer.view_marks import touch
from shared.events.customer import (
    ConsentChanged,
    ContactChannel,
    InteractionLogged,
    InterestsChanged,
    Purpose,
)
from shared.outbox import stage
from shared.pagination import Page, keyset_page
from shared.problems import Unprocessable


async def log_interaction(
    *,
    session: AsyncSession,
    customer_id: uuid.UUID,
    interaction_in: InteractionCreate,
    logged_by: str,
    now: datetime,
    clock_skew: timedelta,
) -> Interaction:
    await service.get(session=session, customer_id=customer_id)
    occurred_at = interaction_in.occurred_at or now
    if occurred_at > now + clock_skew:
        raise Unprocessable("An interaction cannot be logged before it happens.", field="occurred_at")
    interaction = Interaction(
        id=uuid7(),
        customer_id=customer_id,
        **interaction_in.model_dump(exclude={"occurred_at"}, mode="json"),
        logged_by=logged_by,
        occurred_at=occurred_at,
        created_at=now,
        updated_at=now,
    )
    session.add(interaction)
    await session.flush()
    stage(
        InteractionLogged(
            customer_id=customer_id,
            interaction_id=interaction.id,
            channel=interaction_in.channel,
            kind=interaction_in.kind.value,
            outcome=interaction_in.outcome,
            sentiment=interaction_in.sentiment,
            signal=interaction_in.signal,
            occurred_at=occurred_at,
        ),
        session=session,
        source=service.SOURCE,
        time=now,
    )
    return interaction


async def interactions(
    *, session: AsyncSession, customer_id: uuid.UUID, signals_only: bool, limit: int, cursor: str | None
) -> Page[InteractionRead]:
    """Newest first."""
    await service.get(session=session, customer_id=customer_id)
    query = sa.select(Interaction).where(Interaction.customer_id == customer_id)
    if signals_only:
        query = query.where(Interaction.signal.is_not(None))
    rows, next_cursor = await keyset_page(
        query,
        session=session,
        order=[Interaction.occurred_at, Interaction.id],
        descending=True,
        limit=limit,
        cursor=cursor,
    )
    return Page[InteractionRead](
        items=[InteractionRead.model_validate(row, from_attributes=True) for row in rows],
        next_cursor=next_cursor,
    )


async def interests(*, session: AsyncSession, customer_id: uuid.UUID) -> list[InterestRead]:
    await service.get(session=session, customer_id=customer_id)
    rows = await session.scalars(
        sa.select(Interest).where(Interest.customer_id == customer_id).order_by(Interest.topic)
    )
    return [InterestRead(topic=row.topic, source=row.source, since=row.since) for row in rows]


async def set_interests(
    *,
    session: AsyncSession,
    customer_id: uuid.UUID,
    interests_in: InterestsUpdate,
    changed_by: str,
    now: datetime,
) -> list[InterestRead]:
    """Make the customer's interests exactly the set given, logging each topic added or dropped."""
    await service.get(session=session, customer_id=customer_id, for_update=True)
    current = set(
        (await session.scalars(sa.select(Interest.topic).where(Interest.customer_id == customer_id))).all()
    )
    wanted = list(interests_in.interests)
    added = [topic for topic in wanted if topic not in current]
    dropped = sorted(current - set(wanted))
    if dropped:
        await session.execute(
            sa.delete(Interest).where(Interest.customer_id == customer_id, Interest.topic.in_(dropped))
        )
        touch([customer_id], session=session)
    for topic in added:
        session.add(Interest(customer_id=customer_id, topic=topic, source=interests_in.source, since=now))
    for topic, was_added in [*((t, True) for t in added), *((t, False) for t in dropped)]:
        session.add(
            InterestChange(
                id=uuid7(),
                customer_id=customer_id,
                topic=topic,
                added=was_added,
                source=interests_in.source,
                changed_by=changed_by,
                changed_at=now,
            )
        )
    await session.flush()
    if added or dropped:
        stage(
            InterestsChanged(customer_id=customer_id, interests=tuple(sorted(wanted)), changed_at=now),
            session=session,
            source=service.SOURCE,
            time=now,
        )
    return await interests(session=session, customer_id=customer_id)


async def interest_history(
    *, session: AsyncSession, customer_id: uuid.UUID, limit: int, cursor: str | None
) -> Page[InterestChangeRead]:
    await service.get(session=session, customer_id=customer_id)
    rows, next_cursor = await _history(InterestChange, customer_id, limit, cursor, session=session)
    return Page[InterestChangeRead](
        items=[InterestChangeRead.model_validate(row, from_attributes=True) for row in rows],
        next_cursor=next_cursor,
    )


async def consents(*, session: AsyncSession, customer_id: uuid.UUID) -> list[ConsentRead]:
    await service.get(session=session, customer_id=customer_id)
    rows = await session.scalars(
        sa.select(Consent)
        .where(Consent.customer_id == customer_id)
        .order_by(Consent.channel, Consent.purpose)
    )
    return [ConsentRead.model_validate(row, from_attributes=True) for row in rows]


async def set_consent(
    *,
    session: AsyncSession,
    customer_id: uuid.UUID,
    channel: ContactChannel,
    purpose: Purpose,
    consent_in: ConsentUpdate,
    changed_by: str,
    now: datetime,
) -> ConsentRead:
    """Record the customer's word on one channel and purpose; every change is kept with its source."""
    await service.get(session=session, customer_id=customer_id, for_update=True)
    consent = await session.get(Consent, (customer_id, channel.value, purpose.value))
    if consent is not None and consent.granted == consent_in.granted:
        return ConsentRead.model_validate(consent, from_attributes=True)
    if consent is None:
        consent = Consent(
            customer_id=customer_id,
            channel=channel.value,
            purpose=purpose.value,
            granted=consent_in.granted,
            source=consent_in.source,
            changed_at=now,
        )
        session.add(consent)
    else:
        consent.granted, consent.source, consent.changed_at = consent_in.granted, consent_in.source, now
    session.add(
        ConsentChange(
            id=uuid7(),
            customer_id=customer_id,
            channel=channel.value,
            purpose=purpose.value,
            granted=consent_in.granted,
            source=consent_in.source,
            changed_by=changed_by,
            changed_at=now,
        )
    )
    await session.flush()
    stage(
        ConsentChanged(
            customer_id=customer_id,
            channel=channel,
            purpose=purpose,
            granted=consent_in.granted,
            source=consent_in.source,
            changed_at=now,
        ),
        session=session,
        source=service.SOURCE,
        time=now,
    )
    return ConsentRead.model_validate(consent, from_attributes=True)


async def consent_history(
    *, session: AsyncSession, customer_id: uuid.UUID, limit: int, cursor: str | None
) -> Page[ConsentChangeRead]:
    await service.get(session=session, customer_id=customer_id)
    rows, next_cursor = await _history(ConsentChange, customer_id, limit, cursor, session=session)
    return Page[ConsentChangeRead](
        items=[ConsentChangeRead.model_validate(row, from_attributes=True) for row in rows],
        next_cursor=next_cursor,
    )


async def _history(
    model: type[InterestChange] | type[ConsentChange],
    customer_id: uuid.UUID,
    limit: int,
    cursor: str | None,
    *,
    session: AsyncSession,
) -> tuple[list[Any], str | None]:
    """Changes newest first; ids are time-ordered, so the id alone is the cursor."""
    return await keyset_page(
        sa.select(model).where(model.customer_id == customer_id),
        session=session,
        order=[model.id],
        descending=True,
        limit=limit,
        cursor=cursor,
    )
