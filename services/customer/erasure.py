"""Erasure of a customer's personal data, and merging a duplicate into the record it duplicates.
Only flushes; the caller commits."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.customer import service
from services.customer.errors import MergeIntoItself
from services.customer.models import (
    Attachment,
    ComplaintView,
    Consent,
    ConsentChange,
    Contact,
    Customer,
    CustomerTag,
    Erasure,
    Installation,
    Interaction,
    Interest,
    InterestChange,
    NotificationView,
    Purchase,
    PurchaseSummary,
    Refund,
    RelationshipRecord,
)
from services.customer.redaction import ERASED_NAME, redact
from services.customer.schemas import MergeResult
from services.customer.view_marks import touch
from shared import erasure, outbox
from shared.db import affected_rows
from shared.events.customer import CustomerErased, CustomerMerged, CustomerStatus, CustomerUpdated
from shared.outbox import stage

# Rows that describe the person and go with them; purchases and refunds stay, as anonymous figures.
PERSONAL_TABLES = (
    Contact,
    RelationshipRecord,
    Installation,
    Attachment,
    Interaction,
    Interest,
    InterestChange,
    Consent,
    ConsentChange,
    CustomerTag,
    ComplaintView,
    NotificationView,
)
# Events whose payload can carry personal data, rewritten in the outbox on erasure.
PERSONAL_EVENTS = (
    "csm.customer.registered.v1",
    "csm.customer.updated.v1",
    "csm.interaction.logged.v1",
    "csm.customer.interests_changed.v1",
    "csm.customer.consent_changed.v1",
)
# Columns of the customer row that hold personal data.
PERSONAL_COLUMNS = (
    "email",
    "phone",
    "backup_phone",
    "address",
    "region",
    "industry",
    "company_size",
    "acquisition_source",
    "acquisition_channel",
    "account_manager",
    "notes",
)


def external_id_digest(external_id: str) -> str:
    return hashlib.sha256(external_id.encode()).hexdigest()


def _clear_person(customer: Customer) -> None:
    customer.name = ERASED_NAME
    customer.name_key = ""
    customer.tags = []
    for column in PERSONAL_COLUMNS:
        setattr(customer, column, None)


async def erase(*, session: AsyncSession, customer_id: uuid.UUID, erased_by: str, now: datetime) -> None:
    """Remove everything that points to the person; keep their anonymous purchase figures."""
    customer = await service.get(session=session, customer_id=customer_id, for_update=True)
    merged = list(
        (await session.scalars(sa.select(Customer).where(Customer.merged_into == customer.id))).all()
    )
    for record in (customer, *merged):
        # The digest, not the id, so that re-importing an old file cannot bring the person back.
        digest = external_id_digest(record.external_id) if record.external_id else None
        session.add(
            Erasure(customer_id=record.id, erased_at=now, erased_by=erased_by, external_id_digest=digest)
        )
        record.external_id = None
    for table in PERSONAL_TABLES:
        await session.execute(sa.delete(table).where(table.customer_id == customer.id))
    await session.execute(sa.update(Refund).where(Refund.customer_id == customer.id).values(reason=None))
    await _unname_line_items(customer.id, session=session)
    _clear_person(customer)
    customer.status = CustomerStatus.erased.value
    customer.updated_at = now
    await session.flush()
    everyone = [customer.id, *(record.id for record in merged)]
    touch(everyone, session=session)  # their stored views go (personal data)
    # The profile events lose more than their sealed fields: nothing of the person stays.
    await outbox.redact(everyone, session=session, types=PERSONAL_EVENTS, rewrite=redact)
    await erasure.forget(everyone, session=session)
    stage(
        CustomerErased(customer_id=customer.id, erased_at=now),
        session=session,
        source=service.SOURCE,
        time=now,
    )


async def _unname_line_items(customer_id: uuid.UUID, *, session: AsyncSession) -> None:
    """Line items keep what was bought (SKU, quantity, price), not the words typed with it."""
    rows = (
        await session.execute(
            sa.select(Purchase.id, Purchase.line_items).where(
                Purchase.customer_id == customer_id, Purchase.line_items.is_not(None)
            )
        )
    ).all()
    for purchase_id, items in rows:
        kept = [{k: v for k, v in item.items() if k != "name"} for item in items or []]
        await session.execute(sa.update(Purchase).where(Purchase.id == purchase_id).values(line_items=kept))


FILLABLE = (*PERSONAL_COLUMNS, "external_id")
MOVED_WHOLE = (
    Purchase,
    Refund,
    Contact,
    Interaction,
    Installation,
    Attachment,
    InterestChange,
    ConsentChange,
    ComplaintView,
    NotificationView,
)


def fill_blanks(survivor: dict[str, Any], duplicate: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """What the survivor takes from the duplicate (only where it has none), and what differs and is lost."""
    taken: dict[str, Any] = {}
    lost: list[str] = []
    for name in FILLABLE:
        if name == "external_id":
            continue
        mine, theirs = survivor.get(name), duplicate.get(name)
        if theirs is None or theirs == mine:
            continue
        if mine is None:
            taken[name] = theirs
        else:
            lost.append(name)
    phones = {
        survivor.get("phone"),
        survivor.get("backup_phone"),
        taken.get("phone"),
        taken.get("backup_phone"),
    }
    if (
        "phone" in lost
        and duplicate["phone"] not in phones
        and survivor.get("backup_phone") is None
        and "backup_phone" not in taken
    ):
        taken["backup_phone"] = duplicate["phone"]
        lost.remove("phone")
    if "backup_phone" in taken and taken["backup_phone"] in (survivor.get("phone"), taken.get("phone")):
        del taken["backup_phone"]
    tags = list(dict.fromkeys([*survivor.get("tags", []), *duplicate.get("tags", [])]))
    if tags != list(survivor.get("tags", [])):
        taken["tags"] = tags
    if survivor.get("kind") not in ("business", "retailer"):
        for name in ("industry", "company_size"):
            taken.pop(name, None)
    return taken, lost


async def merge(
    *, session: AsyncSession, customer_id: uuid.UUID, duplicate_id: uuid.UUID, now: datetime
) -> MergeResult:
    """Fold ``duplicate_id`` into ``customer_id``: its history moves, its blanks fill the survivor's."""
    if customer_id == duplicate_id:
        raise MergeIntoItself()
    # Lock in id order, so that two merges of the same pair cannot deadlock.
    first, second = sorted((customer_id, duplicate_id))
    locked = {c: await service.get(session=session, customer_id=c, for_update=True) for c in (first, second)}
    survivor, duplicate = locked[customer_id], locked[duplicate_id]
    touch([survivor.id, duplicate.id], session=session)  # rows move by statements, not the ORM
    moved: dict[str, int] = {}
    for table in MOVED_WHOLE:
        result = await session.execute(
            sa.update(table).where(table.customer_id == duplicate.id).values(customer_id=survivor.id)
        )
        moved[table.__tablename__] = affected_rows(result)
    await _merge_sets(survivor.id, duplicate.id, now, session=session)
    await _merge_summaries(survivor.id, duplicate.id, session=session)
    as_dict = {name: getattr(survivor, name) for name in (*FILLABLE, "tags", "kind")}
    taken, lost = fill_blanks(
        as_dict, {name: getattr(duplicate, name) for name in (*FILLABLE, "tags", "kind")}
    )
    survivor.customer_since = min(survivor.customer_since, duplicate.customer_since)
    _clear_person(duplicate)
    duplicate.status = service.MERGED
    duplicate.merged_into = survivor.id
    duplicate.updated_at = now
    await session.flush()  # the duplicate lets go of its phones and tags before the survivor takes them
    for name, value in taken.items():
        setattr(survivor, name, value)
    if "tags" in taken:
        await service.set_tags(survivor.id, taken["tags"], session=session, replace=True)
    survivor.updated_at = now
    await session.flush()
    if taken:
        stage(
            CustomerUpdated(
                customer_id=survivor.id, profile=service.profile_of(survivor), changed=tuple(sorted(taken))
            ),
            session=session,
            source=service.SOURCE,
            time=now,
        )
    stage(
        CustomerMerged(customer_id=survivor.id, merged_id=duplicate.id, merged_at=now),
        session=session,
        source=service.SOURCE,
        time=now,
    )
    return MergeResult(
        customer=service.read_model(survivor), merged_id=duplicate.id, moved=moved, not_kept=lost
    )


async def _merge_sets(
    survivor_id: uuid.UUID, duplicate_id: uuid.UUID, now: datetime, *, session: AsyncSession
) -> None:
    """Interests join; consent: the later word per channel and purpose stands; tags go (refilled after)."""
    mine = set(
        (await session.scalars(sa.select(Interest.topic).where(Interest.customer_id == survivor_id))).all()
    )
    for interest in (
        await session.scalars(sa.select(Interest).where(Interest.customer_id == duplicate_id))
    ).all():
        if interest.topic not in mine:
            session.add(
                Interest(
                    customer_id=survivor_id,
                    topic=interest.topic,
                    source=interest.source,
                    since=interest.since,
                )
            )
    await session.execute(sa.delete(Interest).where(Interest.customer_id == duplicate_id))
    theirs = (await session.scalars(sa.select(Consent).where(Consent.customer_id == duplicate_id))).all()
    for consent in theirs:
        current = await session.get(Consent, (survivor_id, consent.channel, consent.purpose))
        if current is None:
            session.add(
                Consent(
                    customer_id=survivor_id,
                    channel=consent.channel,
                    purpose=consent.purpose,
                    granted=consent.granted,
                    source=consent.source,
                    changed_at=consent.changed_at,
                )
            )
        elif consent.changed_at > current.changed_at:
            current.granted, current.source, current.changed_at = (
                consent.granted,
                consent.source,
                consent.changed_at,
            )
    await session.execute(sa.delete(Consent).where(Consent.customer_id == duplicate_id))
    await session.execute(sa.delete(CustomerTag).where(CustomerTag.customer_id == duplicate_id))
    record = await session.get(RelationshipRecord, duplicate_id)
    if record is not None:
        if await session.get(RelationshipRecord, survivor_id) is None:
            session.add(
                RelationshipRecord(
                    customer_id=survivor_id,
                    past_cooperation=record.past_cooperation,
                    current_cooperation=record.current_cooperation,
                    expected_cooperation=record.expected_cooperation,
                    competitors=list(record.competitors or ()),
                    notes=record.notes,
                    created_at=record.created_at,
                    updated_at=now,
                )
            )
        await session.delete(record)
    await session.flush()


async def _merge_summaries(survivor_id: uuid.UUID, duplicate_id: uuid.UUID, *, session: AsyncSession) -> None:
    theirs = await session.get(PurchaseSummary, duplicate_id)
    if theirs is None:
        return
    mine = await session.get(PurchaseSummary, survivor_id)
    if mine is None:
        session.add(
            PurchaseSummary(
                customer_id=survivor_id,
                purchases=theirs.purchases,
                spent_minor=theirs.spent_minor,
                refunded_minor=theirs.refunded_minor,
                first_purchase_at=theirs.first_purchase_at,
                last_purchase_at=theirs.last_purchase_at,
            )
        )
    else:
        mine.purchases += theirs.purchases
        mine.spent_minor += theirs.spent_minor
        mine.refunded_minor += theirs.refunded_minor
        mine.first_purchase_at = min(
            filter(None, (mine.first_purchase_at, theirs.first_purchase_at)), default=None
        )
        mine.last_purchase_at = max(
            filter(None, (mine.last_purchase_at, theirs.last_purchase_at)), default=None
        )
    await session.delete(theirs)
    await session.flush()
