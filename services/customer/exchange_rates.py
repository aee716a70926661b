"""Converting what customers pay in other currencies into the reporting currency, with the rate table
an operator keeps. Only flushes; the caller commits."""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.customer.errors import ExchangeRateStated
from services.customer.ids import uuid7
from services.customer.models import ExchangeRate
from services.customer.record_schemas import ExchangeRateCreate, ExchangeRateRead
from shared.pagination import Page, keyset_page

ONE = Decimal(1)


def convert(original_minor: int, rate: Decimal) -> int:
    """Minor units paid, in minor units of the reporting currency: rounded half up to the unit."""
    return int((Decimal(original_minor) * rate).quantize(ONE, rounding=ROUND_HALF_UP))


def refund_in_reporting(*, refunded_before: int, refunded_now: int, rate: Decimal) -> int:
    """A refund's share of the converted amount: the conversion of everything refunded so far, less
    what earlier refunds took, so that the parts always add up to the whole."""
    return convert(refunded_before + refunded_now, rate) - convert(refunded_before, rate)


@dataclass
class RateTable:
    """The rates to one reporting currency, each currency's rates in order of ``effective_from``."""

    reporting: str
    _rates: dict[str, tuple[list[datetime], list[Decimal]]] = field(default_factory=dict)

    @classmethod
    def of(cls, reporting: str, rows: Iterable[tuple[str, datetime, str]]) -> RateTable:
        table = cls(reporting)
        for currency, moment, rate in sorted(rows, key=lambda row: (row[0], row[1])):
            moments, rates = table._rates.setdefault(currency, ([], []))
            moments.append(moment)
            rates.append(Decimal(rate))
        return table

    def rate_on(self, currency: str, moment: datetime) -> Decimal | None:
        """The rate in force at ``moment`` (1 for the reporting currency itself), or None."""
        if currency == self.reporting:
            return ONE
        moments, rates = self._rates.get(currency, ([], []))
        index = bisect.bisect_right(moments, moment)
        return rates[index - 1] if index else None

    def missing(self, currency: str, moment: datetime) -> str:
        """Why no rate applies, said for a person."""
        moments, _ = self._rates.get(currency, ([], []))
        if not moments:
            return f"No exchange rate from {currency} to {self.reporting} is known"
        return (
            f"No exchange rate from {currency} to {self.reporting} is in force on "
            f"{moment.date().isoformat()} (the first is from {moments[0].isoformat()})"
        )


async def rate_table(
    reporting: str, *, session: AsyncSession, currencies: Iterable[str] | None = None
) -> RateTable:
    """The rates to ``reporting`` (of the given currencies only, when they are named)."""
    query = sa.select(ExchangeRate.currency, ExchangeRate.effective_from, ExchangeRate.rate).where(
        ExchangeRate.reporting_currency == reporting
    )
    if currencies is not None:
        wanted = set(currencies) - {reporting}
        if not wanted:
            return RateTable(reporting)
        query = query.where(ExchangeRate.currency.in_(wanted))
    return RateTable.of(reporting, ((c, m, r) for c, m, r in await session.execute(query)))


def rate_read(row: ExchangeRate) -> ExchangeRateRead:
    return ExchangeRateRead(
        id=row.id,
        currency=row.currency,
        reporting_currency=row.reporting_currency,
        rate=Decimal(row.rate),
        effective_from=row.effective_from,
        stated_by=row.stated_by,
        created_at=row.created_at,
    )


async def state_rate(
    rate_in: ExchangeRateCreate, *, session: AsyncSession, reporting: str, actor: str, now: datetime
) -> tuple[ExchangeRate, bool]:
    """Add a rate from a moment on; the same rate again is no change, another one a conflict."""
    same_moment = sa.select(ExchangeRate).where(
        ExchangeRate.reporting_currency == reporting,
        ExchangeRate.currency == rate_in.currency,
        ExchangeRate.effective_from == rate_in.effective_from,
    )
    existing = await session.scalar(same_moment)
    if existing is None:
        row = ExchangeRate(
            id=uuid7(),
            currency=rate_in.currency,
            reporting_currency=reporting,
            rate=str(rate_in.rate.normalize()),
            effective_from=rate_in.effective_from,
            stated_by=actor[:200],
            created_at=now,
        )
        try:
            async with session.begin_nested():
                session.add(row)
            return row, True
        except IntegrityError:
            # Stated at the same moment by someone else a moment ago: judged as a repeat below.
            existing = await session.scalar(same_moment)
            assert existing is not None
    if Decimal(existing.rate) != rate_in.rate:
        raise ExchangeRateStated(rate_in.currency, rate_in.effective_from.isoformat(), existing.rate)
    return existing, False


async def list_rates(
    *, session: AsyncSession, reporting: str, currency: str | None, limit: int, cursor: str | None
) -> Page[ExchangeRateRead]:
    """Newest first."""
    query = sa.select(ExchangeRate).where(ExchangeRate.reporting_currency == reporting)
    if currency is not None:
        query = query.where(ExchangeRate.currency == currency)
    rows, next_cursor = await keyset_page(
        query,
        session=session,
        order=[ExchangeRate.effective_from, ExchangeRate.id],
        descending=True,
        limit=limit,
        cursor=cursor,
    )
    return Page[ExchangeRateRead](items=[rate_read(r) for r in rows], next_cursor=next_cursor)
