"""Purchase figures from segmentation's own ledger of purchases, as of any moment.

The everyday path keeps each customer's figures current event by event and moves the window's
start one purchase at a time (``batch.move_window``); the figures as of an analysis date are
computed here from the ledger instead, in one grouped query.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.segmentation.assessment import Population
from services.segmentation.models import CustomerSegment, Purchase

FIGURES = ("frequency", "monetary_minor", "lifetime_frequency", "lifetime_monetary_minor")


async def figures(*, session: AsyncSession, window_start: datetime, until: datetime | None) -> Sequence[Any]:
    """Per customer, from the ledger up to ``until``: purchases and spend in the window and in all,
    and the first and last purchase (rows in the order of ``FIGURES``, then first, then last)."""
    kept = Purchase.fully_refunded.is_(False)
    in_window = Purchase.purchased_at >= window_start
    query = sa.select(
        Purchase.customer_id,
        sa.func.sum(sa.case((kept & in_window, 1), else_=0)),
        sa.func.sum(sa.case((in_window, Purchase.amount_minor), else_=0)),
        sa.func.sum(sa.case((kept, 1), else_=0)),
        sa.func.sum(Purchase.amount_minor),
        sa.func.min(sa.case((kept, Purchase.purchased_at))),
        sa.func.max(sa.case((kept, Purchase.purchased_at))),
    ).group_by(Purchase.customer_id)
    if until is not None:
        query = query.where(Purchase.purchased_at <= until)
    rows: Sequence[Any] = (await session.execute(query)).all()
    return rows


async def rebuild_figures(*, session: AsyncSession, window_start: datetime, until: datetime | None) -> None:
    """Everyone's purchase figures again from the ledger, as of ``until`` (None: everything so far).

    The window's edges moving one purchase at a time (``move_window``) is the everyday path; this is
    for a recompute as of a pinned analysis date, and for the first one after the date is cleared.
    """
    rows = await figures(session=session, window_start=window_start, until=until)
    table = CustomerSegment.__table__
    await session.execute(
        table.update().values(**dict.fromkeys(FIGURES, 0), first_purchase_at=None, last_purchase_at=None)
    )
    if rows:
        await session.execute(
            table.update()
            .where(table.c.customer_id == sa.bindparam("cid"))
            .values(
                {name: sa.bindparam(f"new_{name}") for name in FIGURES}
                | {"first_purchase_at": sa.bindparam("first"), "last_purchase_at": sa.bindparam("last")}
            ),
            [
                {"cid": cid, **{f"new_{n}": int(v or 0) for n, v in zip(FIGURES, v4, strict=True)}}
                | {"first": first, "last": last}
                for cid, *v4, first, last in rows
            ],
        )


def put_figures(ids: Sequence[Any], population: Population, rows: Sequence[Any]) -> None:
    """The same figures as ``rebuild_figures``, into a population in memory (nothing written)."""
    for values in (population.frequency, population.monetary_minor, population.lifetime_frequency):
        values[:] = 0
    population.first_purchase[:] = np.nan
    population.last_purchase[:] = np.nan
    index = {_uuid(cid): i for i, cid in enumerate(ids)}
    for cid, frequency, monetary, lifetime, _lifetime_monetary, first, last in rows:
        i = index.get(_uuid(cid))
        if i is None:
            continue
        population.frequency[i] = int(frequency or 0)
        population.monetary_minor[i] = int(monetary or 0)
        population.lifetime_frequency[i] = int(lifetime or 0)
        population.first_purchase[i] = first.timestamp() if first is not None else np.nan
        population.last_purchase[i] = last.timestamp() if last is not None else np.nan


def _uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
