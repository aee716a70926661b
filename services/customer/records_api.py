"""HTTP routes of what happens with a customer: purchases, refunds, interactions, interests,
consent, contacts and the relationship record. Thin: parse, authorise, call the domain modules."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated, cast

from fastapi import APIRouter, Query, Response, status

from services.customer import activity, purchases, relationship
from services.customer.deps import (
    AgentOrService,
    ClockDep,
    ReadSessionDep,
    RuntimeDep,
    SessionDep,
    SettingsDep,
)
from services.customer.record_schemas import (
    AttachmentCreate,
    AttachmentRead,
    ConsentChangeRead,
    ConsentRead,
    ConsentUpdate,
    InstallationCreate,
    InstallationRead,
    InteractionCreate,
    InteractionRead,
    InterestChangeRead,
    InterestRead,
    InterestsUpdate,
    PurchaseCreate,
    PurchaseRead,
    RefundCreate,
    RefundRead,
    RelationshipRead,
    RelationshipUpdate,
)
from services.customer.schemas import ContactCreate, ContactRead, ContactUpdate
from services.customer.settings import CustomerSettings
from shared.events.customer import ContactChannel, Purpose
from shared.pagination import CursorParam, Limit, Page
from shared.roles import Role

router = APIRouter(prefix="/customers/{customer_id}", tags=["customer records"])


@router.post(
    "/purchases",
    status_code=status.HTTP_201_CREATED,
    summary="Record a purchase",
    description="The order id makes this idempotent: posting the same order again returns the "
    "purchase already recorded, with status 200, and changes nothing.",
    responses={200: {"model": PurchaseRead, "description": "This order was already recorded."}},
)
async def record_purchase(
    customer_id: uuid.UUID,
    purchase_in: PurchaseCreate,
    response: Response,
    clock: ClockDep,
    runtime: RuntimeDep,
    user: AgentOrService,
    *,
    session: SessionDep,
) -> PurchaseRead:
    settings = cast(CustomerSettings, runtime.settings)
    by_hand = user.role is not Role.service and not user.at_least(Role.manager)
    purchase, created = await purchases.record_purchase(
        session=session,
        customer_id=customer_id,
        purchase_in=purchase_in,
        currency=runtime.settings.common.currency,
        window=purchases.PurchaseWindow.of(settings),
        now=clock.now(),
        manual_limit=settings.manual_purchase_limit if by_hand else None,
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return purchases.purchase_read(purchase)


@router.get("/purchases", summary="A customer's purchases, newest first")
async def list_purchases(
    customer_id: uuid.UUID,
    _user: AgentOrService,
    limit: Limit = 50,
    cursor: CursorParam = None,
    *,
    session: ReadSessionDep,
) -> Page[PurchaseRead]:
    return await purchases.list_purchases(
        session=session, customer_id=customer_id, limit=limit, cursor=cursor
    )


@router.post(
    "/purchases/{purchase_id}/refunds",
    status_code=status.HTTP_201_CREATED,
    summary="Refund part or all of a purchase",
    description="Never more than is left of what was paid. The reference makes it idempotent: the same "
    "reference again returns the refund already recorded, with status 200.",
    responses={200: {"model": RefundRead, "description": "This refund was already recorded."}},
)
async def refund_purchase(
    customer_id: uuid.UUID,
    purchase_id: uuid.UUID,
    refund_in: RefundCreate,
    response: Response,
    clock: ClockDep,
    runtime: RuntimeDep,
    _user: AgentOrService,
    *,
    session: SessionDep,
) -> RefundRead:
    refund, purchase, created = await purchases.refund(
        session=session,
        customer_id=customer_id,
        purchase_id=purchase_id,
        refund_in=refund_in,
        currency=runtime.settings.common.currency,
        now=clock.now(),
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return purchases.refund_read(refund, purchase.currency, purchase.original_currency)


@router.post(
    "/interactions",
    status_code=status.HTTP_201_CREATED,
    summary="Log a call, visit, e-mail, chat or a behavioural signal",
    description="A signal (late payment, rudeness to staff, a drop in use, a cancellation request) is how "
    "most "
    "unhappy customers show it: segmentation raises their churn risk from it. Emits interaction.logged.",
)
async def log_interaction(
    customer_id: uuid.UUID,
    interaction_in: InteractionCreate,
    clock: ClockDep,
    settings: SettingsDep,
    user: AgentOrService,
    *,
    session: SessionDep,
) -> InteractionRead:
    interaction = await activity.log_interaction(
        session=session,
        customer_id=customer_id,
        interaction_in=interaction_in,
        logged_by=user.subject,
        now=clock.now(),
        clock_skew=timedelta(seconds=settings.clock_skew_seconds),
    )
    return InteractionRead.model_validate(interaction, from_attributes=True)


@router.get("/interactions", summary="A customer's interactions, newest first")
async def list_interactions(
    customer_id: uuid.UUID,
    _user: AgentOrService,
    signals_only: Annotated[bool, Query(description="Only those that carry a behavioural signal.")] = False,
    limit: Limit = 50,
    cursor: CursorParam = None,
    *,
    session: ReadSessionDep,
) -> Page[InteractionRead]:
    return await activity.interactions(
        session=session, customer_id=customer_id, signals_only=signals_only, limit=limit, cursor=cursor
    )


@router.get("/interests", summary="Topics the customer cares about")
async def get_interests(
    customer_id: uuid.UUID, _user: AgentOrService, *, session: ReadSessionDep
) -> list[InterestRead]:
    return await activity.interests(session=session, customer_id=customer_id)


@router.put(
    "/interests",
    summary="Set the topics the customer cares about",
    description="Emits customer.interests_changed.",
)
async def put_interests(
    customer_id: uuid.UUID,
    interests_in: InterestsUpdate,
    clock: ClockDep,
    user: AgentOrService,
    *,
    session: SessionDep,
) -> list[InterestRead]:
    return await activity.set_interests(
        session=session,
        customer_id=customer_id,
        interests_in=interests_in,
        changed_by=user.subject,
        now=clock.now(),
    )


@router.get("/interests/history", summary="Every topic added or dropped, with when and where from")
async def get_interest_history(
    customer_id: uuid.UUID,
    _user: AgentOrService,
    limit: Limit = 50,
    cursor: CursorParam = None,
    *,
    session: ReadSessionDep,
) -> Page[InterestChangeRead]:
    return await activity.interest_history(
        session=session, customer_id=customer_id, limit=limit, cursor=cursor
    )


@router.get("/consents", summary="The customer's word on each channel and purpose")
async def get_consents(
    customer_id: uuid.UUID, _user: AgentOrService, *, session: ReadSessionDep
) -> list[ConsentRead]:
    return await activity.consents(session=session, customer_id=customer_id)


@router.put(
    "/consents/{channel}/{purpose}",
    summary="Record consent (or its withdrawal) for a channel and purpose",
    description="Service messages and marketing are separate purposes. Emits customer.consent_changed when "
    "the answer changes.",
)
async def put_consent(
    customer_id: uuid.UUID,
    channel: ContactChannel,
    purpose: Purpose,
    consent_in: ConsentUpdate,
    clock: ClockDep,
    user: AgentOrService,
    *,
    session: SessionDep,
) -> ConsentRead:
    return await activity.set_consent(
        session=session,
        customer_id=customer_id,
        channel=channel,
        purpose=purpose,
        consent_in=consent_in,
        changed_by=user.subject,
        now=clock.now(),
    )


@router.get("/consents/history", summary="Every change of consent, with when, where from and who recorded it")
async def get_consent_history(
    customer_id: uuid.UUID,
    _user: AgentOrService,
    limit: Limit = 50,
    cursor: CursorParam = None,
    *,
    session: ReadSessionDep,
) -> Page[ConsentChangeRead]:
    return await activity.consent_history(
        session=session, customer_id=customer_id, limit=limit, cursor=cursor
    )


@router.post(
    "/contacts", status_code=status.HTTP_201_CREATED, summary="Add a named contact at a business customer"
)
async def add_contact(
    customer_id: uuid.UUID,
    contact_in: ContactCreate,
    clock: ClockDep,
    _user: AgentOrService,
    *,
    session: SessionDep,
) -> ContactRead:
    contact = await relationship.add_contact(
        session=session, customer_id=customer_id, contact_in=contact_in, now=clock.now()
    )
    return relationship.contact_read(contact)


@router.get("/contacts", summary="The named contacts at a business customer")
async def list_contacts(
    customer_id: uuid.UUID, _user: AgentOrService, *, session: ReadSessionDep
) -> list[ContactRead]:
    return [
        relationship.contact_read(c)
        for c in await relationship.contacts(session=session, customer_id=customer_id)
    ]


@router.patch("/contacts/{contact_id}", summary="Change a contact")
async def update_contact(
    customer_id: uuid.UUID,
    contact_id: uuid.UUID,
    contact_in: ContactUpdate,
    clock: ClockDep,
    _user: AgentOrService,
    *,
    session: SessionDep,
) -> ContactRead:
    contact = await relationship.update_contact(
        session=session,
        customer_id=customer_id,
        contact_id=contact_id,
        contact_in=contact_in,
        now=clock.now(),
    )
    return relationship.contact_read(contact)


@router.delete("/contacts/{contact_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Remove a contact")
async def remove_contact(
    customer_id: uuid.UUID,
    contact_id: uuid.UUID,
    clock: ClockDep,
    _user: AgentOrService,
    *,
    session: SessionDep,
) -> None:
    await relationship.remove_contact(
        session=session, customer_id=customer_id, contact_id=contact_id, now=clock.now()
    )


@router.get("/relationship", summary="Past, current and expected cooperation, competitors, notes")
async def get_relationship(
    customer_id: uuid.UUID, _user: AgentOrService, *, session: ReadSessionDep
) -> RelationshipRead:
    return await relationship.relationship_record(session=session, customer_id=customer_id)


@router.put("/relationship", summary="Write the relationship record")
async def put_relationship(
    customer_id: uuid.UUID,
    record_in: RelationshipUpdate,
    clock: ClockDep,
    _user: AgentOrService,
    *,
    session: SessionDep,
) -> RelationshipRead:
    return await relationship.write_relationship_record(
        session=session, customer_id=customer_id, record_in=record_in, now=clock.now()
    )


@router.post(
    "/installations", status_code=status.HTTP_201_CREATED, summary="Record a project or installed equipment"
)
async def add_installation(
    customer_id: uuid.UUID,
    installation_in: InstallationCreate,
    clock: ClockDep,
    _user: AgentOrService,
    *,
    session: SessionDep,
) -> InstallationRead:
    return await relationship.add_installation(
        session=session, customer_id=customer_id, installation_in=installation_in, now=clock.now()
    )


@router.get("/installations", summary="Projects and installed equipment, for after-sales service")
async def list_installations(
    customer_id: uuid.UUID, _user: AgentOrService, *, session: ReadSessionDep
) -> list[InstallationRead]:
    return await relationship.installations(session=session, customer_id=customer_id)


@router.post(
    "/attachments",
    status_code=status.HTTP_201_CREATED,
    summary="Attach a file by reference (a store-front photo)",
)
async def add_attachment(
    customer_id: uuid.UUID,
    attachment_in: AttachmentCreate,
    clock: ClockDep,
    _user: AgentOrService,
    *,
    session: SessionDep,
) -> AttachmentRead:
    return await relationship.add_attachment(
        session=session, customer_id=customer_id, attachment_in=attachment_in, now=clock.now()
    )


@router.get("/attachments", summary="Files attached by reference")
async def list_attachments(
    customer_id: uuid.UUID, _user: AgentOrService, *, session: ReadSessionDep
) -> list[AttachmentRead]:
    return await relationship.attachments(session=session, customer_id=customer_id)


@router.delete(
    "/attachments/{attachment_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Remove an attachment"
)
async def remove_attachment(
    customer_id: uuid.UUID, attachment_id: uuid.UUID, _user: AgentOrService, *, session: SessionDep
) -> None:
    await relationship.remove_attachment(
        session=session, customer_id=customer_id, attachment_id=attachment_id
    )
