"""HTTP routes of the customer service: thin, they parse, authorise and call ``service``."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from services.customer import service
from services.customer.deps import AgentOrService, ClockDep, ReadSessionDep, RuntimeDep, SessionDep
from services.customer.schemas import CustomerCreate, CustomerRead, PurchaseCreate, PurchaseRead

router = APIRouter(prefix="/customers", tags=["customers"])


@router.post("", status_code=status.HTTP_201_CREATED, summary="Register a customer")
async def create_customer(
    customer_in: CustomerCreate, session: SessionDep, clock: ClockDep, _user: AgentOrService
) -> CustomerRead:
    customer = await service.register(session=session, customer_in=customer_in, now=clock.now())
    return CustomerRead.model_validate(customer)


@router.get("/{customer_id}", summary="A customer's profile")
async def get_customer(customer_id: uuid.UUID, session: ReadSessionDep, _user: AgentOrService) -> CustomerRead:
    return CustomerRead.model_validate(await service.get(session=session, customer_id=customer_id))


@router.post(
    "/{customer_id}/purchases",
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
    session: SessionDep,
    clock: ClockDep,
    runtime: RuntimeDep,
    _user: AgentOrService,
) -> PurchaseRead:
    purchase, created = await service.record_purchase(
        session=session,
        customer_id=customer_id,
        purchase_in=purchase_in,
        currency=runtime.settings.common.currency,
        now=clock.now(),
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return PurchaseRead.of(purchase)
