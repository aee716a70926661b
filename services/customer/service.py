"""Customer profiles: register, read, change and find customers. Only flushes; the caller commits."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.customer import profile_rules
from services.customer.errors import CustomerMerged, CustomerNotFound, ExternalIdTaken
from services.customer.models import Contact, Customer, CustomerTag
from services.customer.schemas import CustomerCreate, CustomerRead, CustomerSummary, CustomerUpdate
from services.customer.view_marks import touch
from shared.events.customer import CustomerProfile, CustomerRegistered, CustomerStatus, CustomerUpdated
from shared.outbox import stage
from shared.pagination import Page, keyset_page
from shared.problems import Unprocessable

SOURCE = "/csm/customer"
MERGED = "merged"
GONE = (CustomerStatus.erased.value, MERGED)

# Profile fields a PATCH may change, and the column each one is kept in.
PROFILE_FIELDS = (
    "kind",
    "name",
    "email",
    "phone",
    "backup_phone",
    "locale",
    "time_zone",
    "address",
    "region",
    "industry",
    "company_size",
    "acquisition_source",
    "acquisition_channel",
    "status",
    "tags",
    "account_manager",
    "notes",
)


PROFILE_EVENT_FIELDS = (
    "kind",
    "name",
    "email",
    "phone",
    "backup_phone",
    "locale",
    "time_zone",
    "region",
    "status",
    "tags",
    "account_manager",
)


def profile_from(values: Mapping[str, Any]) -> CustomerProfile:
    return CustomerProfile.model_validate(
        {**{name: values[name] for name in PROFILE_EVENT_FIELDS}, "tags": tuple(values["tags"] or ())}
    )


def profile_of(customer: Customer) -> CustomerProfile:
    return profile_from({name: getattr(customer, name) for name in PROFILE_EVENT_FIELDS})


def read_model(customer: Customer) -> CustomerRead:
    return CustomerRead.model_validate({**_columns(customer), "tags": list(customer.tags or ())})


def _columns(customer: Customer) -> dict[str, Any]:
    return {column.key: getattr(customer, column.key) for column in sa.inspect(Customer).column_attrs}


CUSTOMER_COLUMNS = tuple(column.key for column in Customer.__table__.columns)


def new_customer_row(
    customer_in: CustomerCreate, *, now: datetime, customer_id: uuid.UUID | None = None
) -> dict[str, Any]:
    """Every column of a new customer's row."""
    values = customer_in.model_dump(exclude={"customer_since", "tags"}, mode="json")
    row: dict[str, Any] = dict.fromkeys(CUSTOMER_COLUMNS)
    row.update(
        values,
        id=customer_id or uuid.uuid4(),
        name_key=profile_rules.name_key(customer_in.name),
        tags=list(customer_in.tags or ()),
        customer_since=customer_in.customer_since or now,
        key_account=False,
        created_at=now,
        updated_at=now,
    )
    return row


def new_customer(
    customer_in: CustomerCreate, *, now: datetime, customer_id: uuid.UUID | None = None
) -> Customer:
    return Customer(**new_customer_row(customer_in, now=now, customer_id=customer_id))


def registered_event(values: Mapping[str, Any], *, imported: bool = False) -> CustomerRegistered:
    return CustomerRegistered(
        customer_id=values["id"],
        profile=profile_from(values),
        registered_at=values["customer_since"],
        imported=imported,
    )


async def register(
    *, session: AsyncSession, customer_in: CustomerCreate, now: datetime, customer_id: uuid.UUID | None = None
) -> Customer:
    """A new customer; ``customer_id`` when another service chose it (a mail's unknown sender)."""
    if customer_in.external_id is not None:
        taken = await session.scalar(
            sa.select(Customer.id).where(Customer.external_id == customer_in.external_id)
        )
        if taken is not None:
            raise ExternalIdTaken(customer_in.external_id, taken)
    customer = new_customer(customer_in, now=now, customer_id=customer_id)
    session.add(customer)
    await session.flush()
    await set_tags(customer.id, customer.tags, session=session)
    stage(registered_event(_columns(customer)), session=session, source=SOURCE, time=now)
    return customer


async def get(*, session: AsyncSession, customer_id: uuid.UUID, for_update: bool = False) -> Customer:
    """A customer who still exists: 404 for an unknown, erased or merged id (naming the survivor)."""
    query = sa.select(Customer).where(Customer.id == customer_id)
    if for_update:
        query = query.with_for_update()
    customer = await session.scalar(query)
    if customer is None or customer.status == CustomerStatus.erased:
        raise CustomerNotFound(customer_id)
    if customer.status == MERGED:
        raise CustomerMerged(customer_id, customer.merged_into)
    return customer


async def update(
    *, session: AsyncSession, customer_id: uuid.UUID, customer_in: CustomerUpdate, now: datetime
) -> Customer:
    customer = await get(session=session, customer_id=customer_id, for_update=True)
    sent = customer_in.model_dump(include=customer_in.model_fields_set, mode="json")
    proposed = {**{name: getattr(customer, name) for name in PROFILE_FIELDS}, **sent}
    _check_profile(proposed)
    changed = sorted(name for name, value in sent.items() if value != getattr(customer, name))
    if not changed:
        return customer
    for name in changed:
        setattr(customer, name, sent[name])
    if "name" in changed:
        customer.name_key = profile_rules.name_key(customer.name)
    if "tags" in changed:
        await set_tags(customer.id, customer.tags, session=session, replace=True)
    customer.updated_at = now
    await session.flush()
    stage(
        CustomerUpdated(customer_id=customer.id, profile=profile_of(customer), changed=tuple(changed)),
        session=session,
        source=SOURCE,
        time=now,
    )
    return customer


def _check_profile(profile: dict[str, Any]) -> None:
    """Rules across fields, for a profile as it would be after a change."""
    if profile["kind"] not in ("business", "retailer"):
        for name in ("industry", "company_size"):
            if profile.get(name) is not None:
                raise Unprocessable(f"{name} is kept for business and retailer customers only.", field=name)
    if profile.get("backup_phone") is not None and profile["backup_phone"] == profile.get("phone"):
        raise Unprocessable("The backup phone must differ from the primary phone.", field="backup_phone")


async def set_tags(
    customer_id: uuid.UUID, tags: Iterable[str], *, session: AsyncSession, replace: bool = False
) -> None:
    touch([customer_id], session=session)
    if replace:
        await session.execute(sa.delete(CustomerTag).where(CustomerTag.customer_id == customer_id))
    rows = [{"tag": tag, "customer_id": customer_id} for tag in tags]
    if rows:
        await session.execute(sa.insert(CustomerTag), rows)


SUMMARY_COLUMNS = (
    Customer.id,
    Customer.kind,
    Customer.name,
    Customer.email,
    Customer.phone,
    Customer.status,
    Customer.tier,
    Customer.account_manager,
    Customer.tags,
    Customer.name_key,
    Customer.created_at,
)


async def search(
    *,
    session: AsyncSession,
    name: str | None = None,
    phone: str | None = None,
    email: str | None = None,
    tag: str | None = None,
    tier: str | None = None,
    status: str | None = None,
    account_manager: str | None = None,
    kind: str | None = None,
    external_id: str | None = None,
    limit: int,
    cursor: str | None,
) -> Page[CustomerSummary]:
    """Customers matching every filter given, by name (with a name prefix) or else by registration order."""
    query = sa.select(*SUMMARY_COLUMNS)
    if status is None:
        query = query.where(Customer.status.not_in(GONE))
    else:
        query = query.where(Customer.status == status)
    if name is not None:
        key = profile_rules.name_key(name)
        if not key:
            raise Unprocessable("Give at least one letter of the name.", field="name", location="query")
        # A range on the byte-ordered key: the index answers a prefix without scanning.
        query = query.where(Customer.name_key >= key, Customer.name_key < key[:-1] + chr(ord(key[-1]) + 1))
    if phone is not None:
        try:
            number = profile_rules.e164(phone)
        except ValueError as error:
            raise Unprocessable(f"phone {error}", field="phone", location="query") from None
        # A union of three index lookups: an OR across them would make PostgreSQL scan everyone.
        query = query.where(
            Customer.id.in_(
                sa.union(
                    sa.select(Customer.id).where(Customer.phone == number),
                    sa.select(Customer.id).where(Customer.backup_phone == number),
                    sa.select(Contact.customer_id).where(Contact.phone == number),
                )
            )
        )
    if email is not None:
        address = email.strip().lower()
        query = query.where(
            Customer.id.in_(
                sa.union(
                    sa.select(Customer.id).where(Customer.email == address),
                    sa.select(Contact.customer_id).where(Contact.email == address),
                )
            )
        )
    if tag is not None:
        query = query.where(
            Customer.id.in_(
                sa.select(CustomerTag.customer_id).where(CustomerTag.tag == tag.strip().casefold())
            )
        )
    for column, value in (
        (Customer.tier, tier),
        (Customer.account_manager, account_manager),
        (Customer.kind, kind),
        (Customer.external_id, external_id),
    ):
        if value is not None:
            query = query.where(column == value)
    first = Customer.name_key if name is not None else Customer.created_at
    rows, next_cursor = await keyset_page(
        query, session=session, order=[first, Customer.id], limit=limit, cursor=cursor, scalars=False
    )
    items = [CustomerSummary.model_validate(row._asdict()) for row in rows]
    return Page[CustomerSummary](items=items, next_cursor=next_cursor)
