"""Purchase figures from segmentation's own ledger of purchases, as of any moment.

The everyday path keeps each customer's figures current event by event and moves the window's
start one purchase at a time (``batch.move_window``); the figures as of an analysis date are
computed here from the ledger instead, in one grouped query.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.segmentation.columnar import Loaded
from services.segmentation.models import CustomerSegment, Purchase

FIGURES = ("frequency", "monetary_minor", "lifetime_frequency", "lifetime_monetary_minor")


def _utc_day(dialect: str) -> Any:
    """A purchase's (UTC) day, the buying models' unit of transaction (``service.purchase_day``)."""
    if dialect == "postgresql":
        return sa.cast(sa.func.timezone("UTC", Purchase.purchased_at), sa.Date)
    return sa.func.date(Purchase.purchased_at)  # SQLite keeps the moment as naive UTC text


def _figures(window_start: datetime, until: datetime | None, dialect: str) -> sa.Select[Any]:
    kept = Purchase.fully_refunded.is_(False)
    in_window = Purchase.purchased_at >= window_start
    columns: list[Any] = [
        Purchase.customer_id.label("customer_id"),
        sa.func.sum(sa.case((kept & in_window, 1), else_=0)).label("frequency"),
        sa.func.sum(sa.case((in_window, Purchase.amount_minor), else_=0)).label("monetary_minor"),
        sa.func.sum(sa.case((kept, 1), else_=0)).label("lifetime_frequency"),
        sa.func.sum(Purchase.amount_minor).label("lifetime_monetary_minor"),
        sa.func.min(sa.case((kept, Purchase.purchased_at))).label("first_purchase_at"),
        sa.func.max(sa.case((kept, Purchase.purchased_at))).label("last_purchase_at"),
        sa.func.count(sa.distinct(sa.case((kept, _utc_day(dialect))))).label("purchase_days"),
    ]
    query = sa.select(*columns).group_by(Purchase.customer_id)
    return query if until is None else query.where(Purchase.purchased_at <= until)


async def figures(*, session: AsyncSession, window_start: datetime, until: datetime | None) -> Sequence[Any]:
    """Per customer, from the ledger up to ``until``: purchases and spend in the window and in all,
    the first and last purchase and the purchase days (rows in the order of ``FIGURES``, then first,
    last and days)."""
    rows: Sequence[Any] = (await session.execute(_figures(window_start, until, _dialect(session)))).all()
    return rows


async def rebuild_figures(*, session: AsyncSession, window_start: datetime, until: datetime | None) -> None:
    """Everyone's purchase figures again from the ledger, as of ``until`` (None: everything so far).

    The window's edges moving one purchase at a time (``move_window``) is the everyday path; this is
    for a recompute as of a pinned analysis date, and for the first one after the date is cleared.
    Two set-based statements (UPDATE ... FROM, on SQLite and PostgreSQL alike), no rows in Python.
    """
    found = _figures(window_start, until, _dialect(session)).subquery()
    table = CustomerSegment.__table__
    counted = (*FIGURES, "first_purchase_at", "last_purchase_at", "purchase_days")
    # Customers with no purchase by then: nothing counted (only rows that have something to clear).
    bought_by_then = sa.select(Purchase.purchase_id).where(Purchase.customer_id == table.c.customer_id)
    if until is not None:
        bought_by_then = bought_by_then.where(Purchase.purchased_at <= until)
    await session.execute(
        table.update()
        .where(
            ~bought_by_then.exists(),
            sa.or_(
                table.c.lifetime_frequency != 0,
                table.c.lifetime_monetary_minor != 0,
                table.c.first_purchase_at.is_not(None),
            ),
        )
        .values(**dict.fromkeys(FIGURES, 0), first_purchase_at=None, last_purchase_at=None, purchase_days=0)
    )
    await session.execute(
        table.update()
        .where(table.c.customer_id == found.c.customer_id)
        .values({name: found.c[name] for name in counted})
    )


def put_figures(loaded: Loaded, rows: Sequence[Any]) -> None:
    """The same figures as ``rebuild_figures``, into a population in memory."""
    population = loaded.population
    for values in (population.frequency, population.monetary_minor, population.lifetime_frequency):
        values[:] = 0
    population.first_purchase[:] = np.nan
    population.last_purchase[:] = np.nan
    if population.purchase_days is not None:
        population.purchase_days[:] = 0
    if not rows:
        return
    customer, frequency, monetary, lifetime, _lifetime_monetary, first, last, days = zip(*rows, strict=True)
    at = loaded.index_of(customer)
    known = at >= 0
    at = at[known]

    def ints(values: Sequence[Any]) -> np.ndarray:
        return np.array([int(v or 0) for v in values], dtype=np.int64)[known]

    def seconds(values: Sequence[Any]) -> np.ndarray:
        return np.array([np.nan if v is None else v.timestamp() for v in values], dtype=np.float64)[known]

    population.frequency[at] = ints(frequency)
    population.monetary_minor[at] = ints(monetary)
    population.lifetime_frequency[at] = ints(lifetime)
    population.first_purchase[at] = seconds(first)
    population.last_purchase[at] = seconds(last)
    if population.purchase_days is not None:
        population.purchase_days[at] = ints(days)


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name
