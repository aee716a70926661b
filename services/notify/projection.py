"""Notify's own copy of what it needs about customers and complaints, kept from their events.

Events from different topics arrive in no common order, so every projection moves forward
only by the event's own timestamp, and a row may start from a segment or complaint event
before the customer's profile arrives (``known`` false).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from services.notify.models import (
    ComplaintRef,
    Consent,
    Contact,
    Interest,
    Notification,
    PlaybookRun,
    Preference,
    Task,
)
from services.notify.policy import Reach
from shared.events.customer import ContactChannel, CustomerProfile, Purpose


def insert_ignoring_duplicates(table: Any, *, session: AsyncSession) -> Any:
    """An INSERT that skips rows whose unique keys exist already, on SQLite and PostgreSQL."""
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(table).on_conflict_do_nothing()


async def contact_for_update(customer_id: uuid.UUID, *, session: AsyncSession) -> Contact:
    contact = await session.get(Contact, customer_id)
    if contact is None:
        contact = Contact(customer_id=customer_id, known=False, key_account=False)
        session.add(contact)
    return contact


def _is_erased(contact: Contact) -> bool:
    return contact.status == "erased"


async def apply_profile(
    *, session: AsyncSession, customer_id: uuid.UUID, profile: CustomerProfile, at: datetime
) -> None:
    contact = await contact_for_update(customer_id, session=session)
    if _is_erased(contact) or (contact.profile_at is not None and contact.profile_at > at):
        return
    contact.known = True
    contact.kind = profile.kind.value
    contact.name = profile.name
    contact.email = profile.email
    contact.phone = profile.phone or profile.backup_phone
    contact.locale = profile.locale
    contact.time_zone = profile.time_zone
    contact.region = profile.region
    contact.status = profile.status.value
    contact.account_manager = profile.account_manager
    contact.profile_at = at


async def apply_segment(*, session: AsyncSession, customer_id: uuid.UUID, **values: Any) -> None:
    """Tier, key account, segment, stage or risk; None values leave what is known."""
    contact = await contact_for_update(customer_id, session=session)
    if _is_erased(contact):
        return
    for name, value in values.items():
        if value is not None:
            setattr(contact, name, getattr(value, "value", value))


async def apply_consent(
    *,
    session: AsyncSession,
    customer_id: uuid.UUID,
    channel: ContactChannel,
    purpose: Purpose,
    granted: bool,
    at: datetime,
) -> None:
    contact = await contact_for_update(customer_id, session=session)
    if _is_erased(contact):
        return
    consent = await session.get(Consent, (customer_id, channel.value, purpose.value))
    if consent is None:
        session.add(
            Consent(
                customer_id=customer_id,
                channel=channel.value,
                purpose=purpose.value,
                granted=granted,
                changed_at=at,
            )
        )
    elif consent.changed_at <= at:
        consent.granted, consent.changed_at = granted, at


def topic_key(topic: str) -> str:
    return " ".join(topic.split()).casefold()


async def apply_interests(
    *, session: AsyncSession, customer_id: uuid.UUID, interests: Iterable[str], at: datetime
) -> None:
    contact = await contact_for_update(customer_id, session=session)
    if _is_erased(contact) or (contact.interests_at is not None and contact.interests_at > at):
        return
    contact.interests_at = at
    await session.execute(sa.delete(Interest).where(Interest.customer_id == customer_id))
    topics = sorted({topic_key(topic) for topic in interests if topic.strip()})
    if topics:
        await session.execute(sa.insert(Interest), [{"customer_id": customer_id, "topic": t} for t in topics])


async def apply_complaint(
    *,
    session: AsyncSession,
    complaint_id: uuid.UUID,
    customer_id: uuid.UUID,
    status: str | None,
    at: datetime,
    first_owner: str | None = None,
    category: str | None = None,
) -> ComplaintRef:
    ref = await session.get(ComplaintRef, complaint_id)
    if ref is None:
        ref = ComplaintRef(
            complaint_id=complaint_id, customer_id=customer_id, status=status or "open", status_at=at
        )
        session.add(ref)
    elif status is not None and ref.status_at <= at:
        ref.status, ref.status_at = status, at
    ref.first_owner = first_owner or ref.first_owner
    ref.category = category or ref.category
    return ref


_PERSONAL_TABLES = (Interest, Consent, Preference, Notification, Task, PlaybookRun, ComplaintRef)


async def erase(*, session: AsyncSession, customer_id: uuid.UUID) -> None:
    """Forget the person: messages, tasks, runs, choices, contact points. A bare tombstone stays
    so that nothing already on its way (a late event, a redelivery) reaches them again."""
    for table in _PERSONAL_TABLES:
        await session.execute(sa.delete(table).where(table.customer_id == customer_id))
    contact = await contact_for_update(customer_id, session=session)
    for name in (
        "kind",
        "name",
        "email",
        "phone",
        "locale",
        "time_zone",
        "region",
        "account_manager",
        "tier",
        "segment",
        "stage",
        "risk",
    ):
        setattr(contact, name, None)
    contact.known, contact.key_account, contact.status = True, False, "erased"


async def merge(*, session: AsyncSession, survivor: uuid.UUID, merged: uuid.UUID) -> None:
    """What belonged to ``merged`` now belongs to ``survivor``; where both have a choice, the newer wins."""
    if survivor == merged:
        return
    for table in (Notification, Task, PlaybookRun, ComplaintRef):
        await session.execute(
            sa.update(table).where(table.customer_id == merged).values(customer_id=survivor)
        )

    topics = (await session.scalars(sa.select(Interest.topic).where(Interest.customer_id == merged))).all()
    if topics:
        await session.execute(
            insert_ignoring_duplicates(Interest, session=session),
            [{"customer_id": survivor, "topic": t} for t in topics],
        )

    for consent in (await session.scalars(sa.select(Consent).where(Consent.customer_id == merged))).all():
        kept = await session.get(Consent, (survivor, consent.channel, consent.purpose))
        if kept is None:
            session.add(
                Consent(
                    customer_id=survivor,
                    channel=consent.channel,
                    purpose=consent.purpose,
                    granted=consent.granted,
                    changed_at=consent.changed_at,
                )
            )
        elif consent.changed_at > kept.changed_at:
            kept.granted, kept.changed_at = consent.granted, consent.changed_at

    merged_preference = await session.get(Preference, merged)
    if merged_preference is not None and await session.get(Preference, survivor) is None:
        session.add(
            Preference(
                customer_id=survivor,
                channels=dict(merged_preference.channels),
                quiet_start=merged_preference.quiet_start,
                quiet_end=merged_preference.quiet_end,
            )
        )

    merged_contact = await session.get(Contact, merged)
    if merged_contact is not None:
        kept_contact = await contact_for_update(survivor, session=session)
        if not _is_erased(kept_contact):
            for name in (
                "name",
                "email",
                "phone",
                "locale",
                "time_zone",
                "region",
                "account_manager",
                "tier",
                "segment",
                "stage",
                "risk",
                "kind",
            ):
                if getattr(kept_contact, name) is None:
                    setattr(kept_contact, name, getattr(merged_contact, name))
            kept_contact.key_account = kept_contact.key_account or merged_contact.key_account
            kept_contact.known = kept_contact.known or merged_contact.known
    await session.flush()
    for projected in (Interest, Consent, Preference):
        await session.execute(sa.delete(projected).where(projected.customer_id == merged))
    await session.execute(sa.delete(Contact).where(Contact.customer_id == merged))


@dataclass(frozen=True)
class Recipient:
    contact: Contact
    reach: Reach
    # The customer's own quiet hours ("HH:MM", "HH:MM"), if they set them.
    quiet_hours: tuple[str, str] | None


async def recipients(
    customer_ids: Iterable[uuid.UUID], *, session: AsyncSession, contacts: Iterable[Contact] | None = None
) -> dict[uuid.UUID, Recipient]:
    """For each customer notify has a row for: how to reach them (three batched lookups, two when
    the caller has loaded the customers' ``contacts`` already)."""
    ids = list(set(customer_ids))
    if not ids:
        return {}
    if contacts is None:
        contacts = (await session.scalars(sa.select(Contact).where(Contact.customer_id.in_(ids)))).all()
    contact_of = {c.customer_id: c for c in contacts}
    consents: dict[uuid.UUID, dict[tuple[ContactChannel, Purpose], bool]] = {}
    for row in (await session.scalars(sa.select(Consent).where(Consent.customer_id.in_(ids)))).all():
        consents.setdefault(row.customer_id, {})[(ContactChannel(row.channel), Purpose(row.purpose))] = (
            row.granted
        )
    preferences: dict[uuid.UUID, dict[tuple[ContactChannel, Purpose], bool]] = {}
    quiet: dict[uuid.UUID, tuple[str, str]] = {}
    for preference in (
        await session.scalars(sa.select(Preference).where(Preference.customer_id.in_(ids)))
    ).all():
        if preference.quiet_start and preference.quiet_end:
            quiet[preference.customer_id] = (preference.quiet_start, preference.quiet_end)
        flags = preferences.setdefault(preference.customer_id, {})
        for channel, purposes in (preference.channels or {}).items():
            for purpose, allowed in purposes.items():
                flags[(ContactChannel(channel), Purpose(purpose))] = bool(allowed)
    found = {}
    for customer_id, contact in contact_of.items():
        reach = Reach(
            addresses={
                ContactChannel.email: contact.email,
                ContactChannel.sms: contact.phone,
                ContactChannel.in_app: "app",
            },
            consents=consents.get(customer_id, {}),
            preferences=preferences.get(customer_id, {}),
            erased=_is_erased(contact),
        )
        found[customer_id] = Recipient(contact, reach, quiet.get(customer_id))
    return found


def contact_as_mapping(contact: Contact | None) -> dict[str, Any] | None:
    if contact is None:
        return None
    return {
        column: getattr(contact, column)
        for column in (
            "known",
            "kind",
            "status",
            "tier",
            "key_account",
            "segment",
            "stage",
            "risk",
            "region",
        )
    }


async def consent_granted(
    customer_id: uuid.UUID, channel: ContactChannel, purpose: Purpose, *, session: AsyncSession
) -> bool:
    consent = await session.get(Consent, (customer_id, channel.value, purpose.value))
    return consent is not None and consent.granted
