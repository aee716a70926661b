"""Finding likely duplicates of a customer: the same phone or e-mail, or a similar name."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.customer import service
from services.customer.matching import Record, likeness
from services.customer.models import Customer
from services.customer.schemas import CustomerSummary, DuplicateCandidate

# Names are compared within a block sharing their first letters: a typo late in a name is caught,
# one in its first letters is left to the phone and e-mail checks (the usual record-linkage trade).
NAME_BLOCK = 3
NAME_BLOCK_SIZE = 200


def _record(row: sa.Row) -> Record:  # type: ignore[type-arg]
    return Record(
        name_key=row.name_key,
        email=row.email,
        phones=frozenset(p for p in (row.phone, row.backup_phone) if p),
    )


async def candidates(
    *, session: AsyncSession, customer_id: uuid.UUID, name_threshold: float, limit: int
) -> list[DuplicateCandidate]:
    customer = await service.get(session=session, customer_id=customer_id)
    phones = [p for p in (customer.phone, customer.backup_phone) if p]
    conditions = []
    if customer.email:
        conditions.append(Customer.email == customer.email)
    if phones:
        conditions += [Customer.phone.in_(phones), Customer.backup_phone.in_(phones)]
    block = customer.name_key[:NAME_BLOCK]
    columns = (*service.SUMMARY_COLUMNS, Customer.backup_phone)
    live = (Customer.id != customer.id, Customer.status.not_in(service.GONE))
    found: dict[uuid.UUID, sa.Row] = {}  # type: ignore[type-arg]
    if conditions:
        for row in (
            await session.execute(
                sa.select(*columns).where(sa.or_(*conditions), *live).limit(NAME_BLOCK_SIZE)
            )
        ).all():
            found[row.id] = row
    if block:
        upper = block[:-1] + chr(ord(block[-1]) + 1)
        by_name = sa.select(*columns).where(Customer.name_key >= block, Customer.name_key < upper, *live)
        for row in (await session.execute(by_name.order_by(Customer.name_key).limit(NAME_BLOCK_SIZE))).all():
            found[row.id] = row
    me = Record(name_key=customer.name_key, email=customer.email, phones=frozenset(phones))
    scored = []
    for row in found.values():
        score, reasons = likeness(me, _record(row), name_threshold=name_threshold)
        if reasons:
            summary = CustomerSummary.model_validate(row._asdict())
            scored.append(DuplicateCandidate(customer=summary, score=score, reasons=reasons))
    scored.sort(key=lambda c: (-c.score, str(c.customer.id)))
    return scored[:limit]
