"""Who speaks for a business customer and what the relationship is: contacts, the relationship
record, installed equipment and attachments. Only flushes; the caller commits."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.customer import service
from services.customer.errors import AttachmentNotFound, ContactNotFound, NotAnOrganisation
from services.customer.ids import uuid7
from services.customer.models import Attachment, Contact, Installation, RelationshipRecord
from services.customer.record_schemas import (
    AttachmentCreate,
    AttachmentRead,
    InstallationCreate,
    InstallationRead,
    RelationshipRead,
    RelationshipUpdate,
)
from services.customer.schemas import BUSINESS_KINDS, ContactCreate, ContactRead, ContactUpdate
from shared.db import affected_rows
from shared.events.customer import ContactChanged
from shared.outbox import stage
from shared.problems import Unprocessable


def contact_read(contact: Contact) -> ContactRead:
    return ContactRead.model_validate(contact, from_attributes=True)


async def add_contact(
    *, session: AsyncSession, customer_id: uuid.UUID, contact_in: ContactCreate, now: datetime
) -> Contact:
    customer = await service.get(session=session, customer_id=customer_id)
    if customer.kind not in BUSINESS_KINDS:
        raise NotAnOrganisation()
    _check_phones(contact_in.phone, contact_in.backup_phone)
    contact = Contact(
        id=uuid7(),
        customer_id=customer.id,
        **contact_in.model_dump(mode="json"),
        created_at=now,
        updated_at=now,
    )
    session.add(contact)
    await session.flush()
    _announce(contact, session=session, now=now)
    return contact


def _announce(contact: Contact, *, session: AsyncSession, now: datetime, removed: bool = False) -> None:
    """Other services learn who writes for the customer (complaints places their mail by it)."""
    stage(
        ContactChanged(
            customer_id=contact.customer_id,
            contact_id=contact.id,
            email=None if removed else contact.email,
            removed=removed,
            changed_at=now,
        ),
        session=session,
        source=service.SOURCE,
        time=now,
    )


def _check_phones(phone: str | None, backup: str | None) -> None:
    if backup is not None and backup == phone:
        raise Unprocessable("The backup phone must differ from the primary phone.", field="backup_phone")


async def _contact(customer_id: uuid.UUID, contact_id: uuid.UUID, *, session: AsyncSession) -> Contact:
    await service.get(session=session, customer_id=customer_id)
    contact = await session.scalar(
        sa.select(Contact).where(Contact.id == contact_id, Contact.customer_id == customer_id)
    )
    if contact is None:
        raise ContactNotFound(customer_id, contact_id)
    return contact


async def update_contact(
    *,
    session: AsyncSession,
    customer_id: uuid.UUID,
    contact_id: uuid.UUID,
    contact_in: ContactUpdate,
    now: datetime,
) -> Contact:
    contact = await _contact(customer_id, contact_id, session=session)
    changes = contact_in.model_dump(include=contact_in.model_fields_set, mode="json")
    _check_phones(changes.get("phone", contact.phone), changes.get("backup_phone", contact.backup_phone))
    for name, value in changes.items():
        setattr(contact, name, value)
    contact.updated_at = now
    await session.flush()
    if "email" in changes:
        _announce(contact, session=session, now=now)
    return contact


async def remove_contact(
    *, session: AsyncSession, customer_id: uuid.UUID, contact_id: uuid.UUID, now: datetime
) -> None:
    contact = await _contact(customer_id, contact_id, session=session)
    _announce(contact, session=session, now=now, removed=True)
    await session.delete(contact)
    await session.flush()


async def contacts(*, session: AsyncSession, customer_id: uuid.UUID) -> list[Contact]:
    await service.get(session=session, customer_id=customer_id)
    return list(
        (
            await session.scalars(
                sa.select(Contact)
                .where(Contact.customer_id == customer_id)
                .order_by(Contact.role, Contact.name, Contact.id)
            )
        ).all()
    )


async def relationship_record(*, session: AsyncSession, customer_id: uuid.UUID) -> RelationshipRead:
    await service.get(session=session, customer_id=customer_id)
    record = await session.get(RelationshipRecord, customer_id)
    if record is None:
        return RelationshipRead()
    return _record_read(record)


def _record_read(record: RelationshipRecord) -> RelationshipRead:
    fields: dict[str, Any] = {name: getattr(record, name) for name in RelationshipRead.model_fields}
    return RelationshipRead.model_validate({**fields, "competitors": list(record.competitors or ())})


async def write_relationship_record(
    *, session: AsyncSession, customer_id: uuid.UUID, record_in: RelationshipUpdate, now: datetime
) -> RelationshipRead:
    await service.get(session=session, customer_id=customer_id)
    record = await session.get(RelationshipRecord, customer_id)
    values = record_in.model_dump(mode="json")
    if record is None:
        record = RelationshipRecord(customer_id=customer_id, **values, created_at=now, updated_at=now)
        session.add(record)
    else:
        for name, value in values.items():
            setattr(record, name, value)
        record.updated_at = now
    await session.flush()
    return _record_read(record)


async def add_installation(
    *, session: AsyncSession, customer_id: uuid.UUID, installation_in: InstallationCreate, now: datetime
) -> InstallationRead:
    await service.get(session=session, customer_id=customer_id)
    if (
        installation_in.installed_at
        and installation_in.warranty_until
        and installation_in.warranty_until < installation_in.installed_at
    ):
        raise Unprocessable("The warranty cannot end before the installation.", field="warranty_until")
    installation = Installation(
        id=uuid7(), customer_id=customer_id, **installation_in.model_dump(), created_at=now, updated_at=now
    )
    session.add(installation)
    await session.flush()
    return InstallationRead.model_validate(installation, from_attributes=True)


async def installations(*, session: AsyncSession, customer_id: uuid.UUID) -> list[InstallationRead]:
    await service.get(session=session, customer_id=customer_id)
    rows = await session.scalars(
        sa.select(Installation).where(Installation.customer_id == customer_id).order_by(Installation.id)
    )
    return [InstallationRead.model_validate(row, from_attributes=True) for row in rows]


async def add_attachment(
    *, session: AsyncSession, customer_id: uuid.UUID, attachment_in: AttachmentCreate, now: datetime
) -> AttachmentRead:
    await service.get(session=session, customer_id=customer_id)
    attachment = Attachment(
        id=uuid7(),
        customer_id=customer_id,
        kind=attachment_in.kind.value,
        url=str(attachment_in.url),
        caption=attachment_in.caption,
        created_at=now,
        updated_at=now,
    )
    session.add(attachment)
    await session.flush()
    return AttachmentRead.model_validate(attachment, from_attributes=True)


async def attachments(*, session: AsyncSession, customer_id: uuid.UUID) -> list[AttachmentRead]:
    await service.get(session=session, customer_id=customer_id)
    rows = await session.scalars(
        sa.select(Attachment).where(Attachment.customer_id == customer_id).order_by(Attachment.id)
    )
    return [AttachmentRead.model_validate(row, from_attributes=True) for row in rows]


async def remove_attachment(
    *, session: AsyncSession, customer_id: uuid.UUID, attachment_id: uuid.UUID
) -> None:
    await service.get(session=session, customer_id=customer_id)
    result = await session.execute(
        sa.delete(Attachment).where(Attachment.id == attachment_id, Attachment.customer_id == customer_id)
    )
    if not affected_rows(result):
        raise AttachmentNotFound(customer_id, attachment_id)
