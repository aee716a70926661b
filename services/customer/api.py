"""HTTP routes of the customer profile: thin, they parse, authorise and call the domain modules."""

from __future__ import annotations

import uuid
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Query, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from services.customer import duplicates, erasure, service
from services.customer.deps import (
    Admin,
    AgentOrService,
    ClockDep,
    ReadSessionDep,
    SessionDep,
    SettingsDep,
    Supervisor,
    view_of,
)
from services.customer.errors import AccountManagerNeedsSupervisor
from services.customer.models import Customer
from services.customer.record_schemas import Customer360
from services.customer.schemas import (
    CustomerCreate,
    CustomerRead,
    CustomerSummary,
    CustomerUpdate,
    DuplicateCandidate,
    MergeRequest,
    MergeResult,
)
from shared import audit
from shared.auth import Principal
from shared.deps import get_runtime
from shared.events.customer import CustomerKind, CustomerStatus
from shared.events.segmentation import Tier
from shared.pagination import CursorParam, Limit, Page
from shared.roles import Role

router = APIRouter(prefix="/customers", tags=["customers"])


@router.post("", status_code=status.HTTP_201_CREATED, summary="Register a customer")
async def create_customer(
    customer_in: CustomerCreate, clock: ClockDep, user: AgentOrService, *, session: SessionDep
) -> CustomerRead:
    if customer_in.account_manager is not None:
        _may_name_account_manager(user)
    customer = await service.register(session=session, customer_in=customer_in, now=clock.now())
    return service.read_model(customer)


@router.get(
    "",
    summary="Find customers",
    description="Every filter given must match. `name` matches the start of the name, ignoring case; `phone` "
    "matches the primary or backup phone or a contact's phone; `email` a customer's or a contact's address. "
    "With `name` the list is in name order, otherwise in order of registration. Erased and merged customers "
    "are left out unless `status` asks for them.",
)
async def search_customers(
    _user: AgentOrService,
    name: Annotated[str | None, Query(max_length=200)] = None,
    phone: Annotated[str | None, Query(max_length=40)] = None,
    email: Annotated[str | None, Query(max_length=320)] = None,
    tag: Annotated[str | None, Query(max_length=50)] = None,
    tier: Tier | None = None,
    status: CustomerStatus | None = None,
    account_manager: Annotated[str | None, Query(max_length=100)] = None,
    kind: CustomerKind | None = None,
    external_id: Annotated[str | None, Query(max_length=100)] = None,
    limit: Limit = 50,
    cursor: CursorParam = None,
    *,
    session: ReadSessionDep,
) -> Page[CustomerSummary]:
    return await service.search(
        session=session,
        name=name,
        phone=phone,
        email=email,
        tag=tag,
        tier=tier.value if tier else None,
        status=status.value if status else None,
        account_manager=account_manager,
        kind=kind.value if kind else None,
        external_id=external_id,
        limit=limit,
        cursor=cursor,
    )


@router.get("/{customer_id}", summary="A customer's profile")
async def get_customer(
    customer_id: uuid.UUID, _user: AgentOrService, *, session: ReadSessionDep
) -> CustomerRead:
    return service.read_model(await service.get(session=session, customer_id=customer_id))


@router.patch(
    "/{customer_id}",
    summary="Change a customer's profile",
    description="Only the fields sent change; `null` clears an optional one. Emits customer.updated with the "
    "whole profile and the names of the fields that changed.",
)
async def update_customer(
    customer_id: uuid.UUID,
    customer_in: CustomerUpdate,
    clock: ClockDep,
    user: AgentOrService,
    *,
    session: SessionDep,
) -> CustomerRead:
    manager_before = None
    if "account_manager" in customer_in.model_fields_set:
        _may_name_account_manager(user)
        # A column, not the entity: update() locks and loads the customer itself.
        manager_before = await session.scalar(
            sa.select(Customer.account_manager).where(Customer.id == customer_id)
        )
    customer = await service.update(
        session=session, customer_id=customer_id, customer_in=customer_in, now=clock.now()
    )
    if "account_manager" in customer_in.model_fields_set and customer.account_manager != manager_before:
        # Who is responsible for the customer: a staff subject, not the customer's data.
        await audit.record(
            session,
            actor=user,
            action="account_manager.put",
            subject_type="customer",
            subject_id=customer_id,
            before={"account_manager": manager_before},
            after={"account_manager": customer.account_manager},
            at=clock.now(),
        )
    return service.read_model(customer)


@router.get(
    "/{customer_id}/360",
    summary="Everything about a customer in one call",
    description="Profile, standing (tier, segment, stage, key account, churn risk), lifetime totals, "
    "contacts, "
    "recent purchases, open complaints, recent notifications and interactions, interests and consent. Built "
    "from this service's own data and projections: it never waits on another service.",
    response_model=Customer360,
    responses={304: {"description": "Unchanged since the entity tag named in If-None-Match"}},
    openapi_extra={
        "parameters": [
            {
                "name": "If-None-Match",
                "in": "header",
                "required": False,
                "schema": {"type": "string"},
                "description": "The ETag of a view already held: 304 without a body if it still holds.",
            }
        ]
    },
)
async def customer_360(customer_id: uuid.UUID, request: Request, _user: AgentOrService) -> Response:
    # The most frequent read of all, so its dependencies are few: FastAPI solves each dependency of each
    # request afresh (a session as a dependency, the view builder and the header as parameters were a
    # fifth of the request's CPU). The session and the header are taken here, as a bare endpoint would.
    async with get_runtime(request).db.read() as session:
        found = await view_of(request).read(session=session, customer_id=customer_id)
    etag = f'"{found.etag}"'
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None and (if_none_match.strip() == "*" or etag in _tags(if_none_match)):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(found.document, media_type="application/json", headers=headers)


def _tags(if_none_match: str) -> set[str]:
    """The entity tags of an If-None-Match header; a weak tag matches too (RFC 9110, weak comparison)."""
    return {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}


@router.delete(
    "/{customer_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Erase a customer's personal data (admin)",
    description="Removes the person's profile, contacts, interactions, interests, consent and relationship "
    "record, and rewrites their retained events without personal data. Purchase figures stay, anonymous. "
    "Emits customer.erased, on which every other service purges what it holds.",
)
async def erase_customer(
    customer_id: uuid.UUID, clock: ClockDep, admin: Admin, *, session: SessionDep
) -> None:
    before = await _profile(customer_id, session=session)
    await erasure.erase(session=session, customer_id=customer_id, erased_by=admin.subject, now=clock.now())
    await audit.record(
        session,
        actor=admin,
        action="customer.erase",
        subject_type="customer",
        subject_id=customer_id,
        **_unnamed(before, await _profile(customer_id, session=session)),
        at=clock.now(),
    )


@router.get("/{customer_id}/duplicates", summary="Likely duplicates of a customer, most likely first")
async def find_duplicates(
    customer_id: uuid.UUID, settings: SettingsDep, _user: AgentOrService, *, session: ReadSessionDep
) -> list[DuplicateCandidate]:
    return await duplicates.candidates(
        session=session,
        customer_id=customer_id,
        name_threshold=settings.duplicate_name_similarity,
        limit=settings.duplicate_candidates,
    )


@router.post(
    "/{customer_id}/merge",
    summary="Merge a duplicate into this customer (supervisor)",
    description="Purchases, refunds, contacts, interactions, interests, consent, the relationship record and "
    "projections move here; the duplicate's values fill this profile's blanks. The duplicate's id then "
    "answers 404 naming this one. Emits customer.merged.",
)
async def merge_customers(
    customer_id: uuid.UUID, merge_in: MergeRequest, clock: ClockDep, user: Supervisor, *, session: SessionDep
) -> MergeResult:
    before = await _profile(customer_id, session=session)
    merged = await erasure.merge(
        session=session, customer_id=customer_id, duplicate_id=merge_in.duplicate_id, now=clock.now()
    )
    unnamed = _unnamed(before, await _profile(customer_id, session=session))
    unnamed["after"] |= {
        "merged_id": str(merged.merged_id),
        "moved": merged.moved,
        "not_kept": merged.not_kept,
    }
    await audit.record(
        session,
        actor=user,
        action="customer.merge",
        subject_type="customer",
        subject_id=customer_id,
        **unnamed,
        at=clock.now(),
    )
    return merged


async def _profile(customer_id: uuid.UUID, *, session: AsyncSession) -> dict[str, object]:
    """The customer's row as it is in the transaction (pending changes flushed), read as values, so that
    the entity erase() and merge() lock and load is not loaded before them; empty for an unknown id."""
    await session.flush()
    row = (await session.execute(sa.select(Customer.__table__).where(Customer.id == customer_id))).first()
    return dict(row._mapping) if row is not None else {}


def _unnamed(before: dict[str, object], after: dict[str, object]) -> dict[str, dict[str, object]]:
    """A change to a person's record as the audit log keeps it: their status, and which fields changed,
    never the values — the log outlives an erasure and must not name whom it erased."""
    changed = [name for name in audit.changed_fields(before, after) if name not in ("updated_at", "status")]
    return {
        "before": {"status": before.get("status")},
        "after": {"status": after.get("status"), "fields_changed": changed},
    }


def _may_name_account_manager(user: Principal) -> None:
    """An agent may not make himself (or anyone) a customer's account manager; systems may sync it."""
    if user.role is not Role.service and not user.at_least(Role.supervisor):
        raise AccountManagerNeedsSupervisor()
