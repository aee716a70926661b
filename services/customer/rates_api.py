"""HTTP routes of the exchange-rate table: purchases in other currencies are converted with it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from services.customer import exchange_rates
from services.customer.deps import AgentOrService, ClockDep, Manager, ReadSessionDep, SessionDep, SettingsDep
from services.customer.record_schemas import Currency, ExchangeRateCreate, ExchangeRateRead
from shared import audit
from shared.pagination import CursorParam, Limit, Page

router = APIRouter(prefix="/exchange-rates", tags=["exchange rates"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="State a rate to the reporting currency from a moment on (a manager or an admin)",
    description="Purchases from `effective_from` on, until a later rate, are converted at it. The same "
    "rate stated again answers 200 and changes nothing; another rate from the same moment is a 409: "
    "rates are history, state a new one from a later moment.",
    responses={200: {"model": ExchangeRateRead, "description": "This rate was already stated."}},
)
async def state_rate(
    rate_in: ExchangeRateCreate,
    response: Response,
    clock: ClockDep,
    settings: SettingsDep,
    user: Manager,
    *,
    session: SessionDep,
) -> ExchangeRateRead:
    row, created = await exchange_rates.state_rate(
        rate_in,
        session=session,
        reporting=settings.common.currency,
        actor=user.name or user.subject,
        now=clock.now(),
    )
    if not created:
        response.status_code = status.HTTP_200_OK
        return exchange_rates.rate_read(row)
    stated = exchange_rates.rate_read(row)
    # Rates are history: a new one is added, none is changed, so there is nothing before it.
    await audit.record(
        session,
        actor=user,
        action="exchange_rate.state",
        subject_type="exchange_rate",
        subject_id=stated.id,
        after=stated,
        at=clock.now(),
    )
    return stated


@router.get("", summary="The rates to the reporting currency, newest first")
async def list_rates(
    settings: SettingsDep,
    _user: AgentOrService,
    currency: Annotated[Currency | None, Query(description="Only this currency's rates.")] = None,
    limit: Limit = 50,
    cursor: CursorParam = None,
    *,
    session: ReadSessionDep,
) -> Page[ExchangeRateRead]:
    return await exchange_rates.list_rates(
        session=session, reporting=settings.common.currency, currency=currency, limit=limit, cursor=cursor
    )
