"""What a consumer batch works on: its customers' rows and ledgers as plain rows, and what it will write.

A batch reads its customers (and their purchase ledgers) in two queries up front (``Batch.load``);
the handlers change those plain rows in memory, in the order of the events, and queue the rows to
insert; ``Batch.flush`` writes them with one executemany per table. An event that rewrites rows
beyond the ones in memory (an erasure, a merge) flushes first and runs its statements at once, so
the database and the rows in memory agree before and after it.

Nothing rides on ``session.info``: the batch context is this object, passed to each handler.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from operator import attrgetter, itemgetter
from types import SimpleNamespace
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.segmentation import service
from services.segmentation.models import BehaviourSignal, CustomerSegment, Purchase, TierChange
from services.segmentation.service import Context
from shared.db import RawWrite, new_id

SEGMENT = CustomerSegment.__table__
PURCHASE = Purchase.__table__
SIGNAL = BehaviourSignal.__table__
HISTORY = TierChange.__table__
COLUMNS = tuple(column.key for column in SEGMENT.columns)
# A known customer's row is rewritten whole but for its key (any handler may change any figure).
UPDATED = tuple(name for name in COLUMNS if name != "customer_id")
LEDGER_COLUMNS = ("purchase_id", "customer_id", "amount_minor", "purchased_at", "fully_refunded")


def plain_row(**values: Any) -> CustomerSegment:
    """A plain row with a segment's attributes: the shared rules read and write it as they do the ORM's."""
    return cast(CustomerSegment, SimpleNamespace(**(dict.fromkeys(COLUMNS) | values)))


@dataclass
class Ledger:
    """One purchase as the ledger holds it (net of refunds)."""

    purchase_id: uuid.UUID
    customer_id: uuid.UUID
    amount_minor: int
    purchased_at: datetime
    fully_refunded: bool

    def as_row(self) -> tuple[Any, ...]:
        """The purchase's values in ``LEDGER_COLUMNS`` order."""
        return (self.purchase_id, self.customer_id, self.amount_minor, self.purchased_at, self.fully_refunded)


@dataclass
class Batch:
    """A batch's working set and pending writes (see the module's doc)."""

    session: AsyncSession
    ctx: Context
    now: datetime
    # Each customer the batch names: their row, or None if segmentation holds none (yet, or any more).
    rows: dict[uuid.UUID, CustomerSegment | None] = field(default_factory=dict)
    stored: set[uuid.UUID] = field(default_factory=set)  # rows the database holds
    dirty: set[uuid.UUID] = field(default_factory=set)
    purchases: dict[uuid.UUID, Ledger] = field(default_factory=dict)
    ledgers: dict[uuid.UUID, dict[uuid.UUID, Ledger]] = field(default_factory=dict)
    # Per customer, how many of their purchases not refunded in full fall on each (UTC) day.
    days: dict[uuid.UUID, Counter[date]] = field(default_factory=dict)
    new_purchases: dict[uuid.UUID, Ledger] = field(default_factory=dict)
    changed_purchases: dict[uuid.UUID, Ledger] = field(default_factory=dict)
    signals: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    # The row of a customer of whom nothing is known (``service.new_segment``): the same for everyone
    # new in the batch but for their id.
    blank: dict[str, Any] | None = None

    @classmethod
    async def load(
        cls,
        *,
        session: AsyncSession,
        ctx: Context,
        now: datetime,
        customers: Iterable[uuid.UUID],
        purchases: Iterable[uuid.UUID] = (),
    ) -> Batch:
        """The customers' rows and ledgers, and the purchases named (by refunds), in two queries."""
        batch = cls(session=session, ctx=ctx, now=now)
        wanted = set(customers)
        batch.rows = dict.fromkeys(wanted)
        for customer_id in wanted:
            batch.ledgers[customer_id] = {}
            batch.days[customer_id] = Counter()
        if wanted:
            found = await session.execute(sa.select(SEGMENT).where(SEGMENT.c.customer_id.in_(wanted)))
            for row in found:
                batch.rows[row.customer_id] = plain_row(**row._asdict())
                batch.stored.add(row.customer_id)
        named = set(purchases)
        condition = []
        if wanted:
            condition.append(PURCHASE.c.customer_id.in_(wanted))
        if named:
            condition.append(PURCHASE.c.purchase_id.in_(named))
        if condition:
            for row in await session.execute(sa.select(PURCHASE).where(sa.or_(*condition))):
                batch._hold(Ledger(**row._asdict()))
        return batch

    def _hold(self, purchase: Ledger) -> None:
        self.purchases[purchase.purchase_id] = purchase
        ledger = self.ledgers.get(purchase.customer_id)
        if ledger is None:  # a refunded purchase of someone not in this batch
            return
        ledger[purchase.purchase_id] = purchase
        if not purchase.fully_refunded:
            self.days[purchase.customer_id][service.purchase_day(purchase.purchased_at)] += 1

    def segment(self, customer_id: uuid.UUID) -> CustomerSegment:
        """The customer's row, created if this is news of them; it will be written."""
        segment = self.rows.get(customer_id)
        if segment is None:
            if self.blank is None:
                self.blank = vars(
                    service.new_segment(
                        customer_id,
                        self.ctx,
                        self.now,
                        make=plain_row,
                        verdict=service.blank_verdict(self.ctx, self.now),
                    )
                )
            # Everyone new in the batch starts alike: a copy of the first one's new row, under their id.
            segment = self.rows[customer_id] = cast(
                CustomerSegment, SimpleNamespace(**(self.blank | {"customer_id": customer_id}))
            )
            self.ledgers.setdefault(customer_id, {})
            self.days.setdefault(customer_id, Counter())
        self.dirty.add(customer_id)
        return segment

    def record_purchase(self, purchase: Ledger) -> bool:
        """Add a purchase to the ledger; True if the customer had no other on its day."""
        day = service.purchase_day(purchase.purchased_at)
        new_day = self.days[purchase.customer_id][day] == 0
        self._hold(purchase)
        self.new_purchases[purchase.purchase_id] = purchase
        return new_day

    def refund_in_full(self, purchase: Ledger) -> None:
        purchase.fully_refunded = True
        self.changed(purchase)
        days = self.days.get(purchase.customer_id)
        if days is not None:
            days[service.purchase_day(purchase.purchased_at)] -= 1

    def changed(self, purchase: Ledger) -> None:
        if purchase.purchase_id not in self.new_purchases:
            self.changed_purchases[purchase.purchase_id] = purchase

    def refresh_purchase_span(self, segment: CustomerSegment) -> None:
        """First and last purchase and the purchase days again from the ledger (up to a pinned
        analysis date), after a purchase was refunded in full."""
        until = self.ctx.as_of
        moments = [
            p.purchased_at
            for p in self.ledgers[segment.customer_id].values()
            if not p.fully_refunded and (until is None or p.purchased_at <= until)
        ]
        segment.first_purchase_at = min(moments, default=None)
        segment.last_purchase_at = max(moments, default=None)
        segment.purchase_days = len({service.purchase_day(moment) for moment in moments})

    def add_signal(
        self,
        segment: CustomerSegment,
        *,
        kind: str,
        points: float,
        occurred_at: datetime,
        cause_id: uuid.UUID,
    ) -> None:
        """Count a behaviour toward the risk points, if it is recent enough to count at all.

        One after a pinned analysis date is kept but not counted yet: the batch that clears the date
        counts it (``batch.refresh_signal_points``).
        """
        since = self.ctx.moment(self.now) - timedelta(days=self.ctx.policy.signals.window_days)
        if points <= 0 or occurred_at < since:
            return
        self.signals.append(
            {
                "id": new_id(),
                "customer_id": segment.customer_id,
                "kind": kind,
                "points": points,
                "occurred_at": occurred_at,
                "cause_event_id": cause_id,
            }
        )
        if self.ctx.counts(occurred_at):
            segment.signal_points += points

    def forget(self, customer_id: uuid.UUID) -> None:
        """The customer's rows are gone from the database (erased, or merged into another)."""
        self.rows[customer_id] = None
        self.stored.discard(customer_id)
        self.dirty.discard(customer_id)
        for purchase_id in self.ledgers.get(customer_id, {}):
            self.purchases.pop(purchase_id, None)
        self.ledgers[customer_id] = {}
        self.days[customer_id] = Counter()

    async def flush(self) -> None:
        """Write what the batch changed: one executemany per table."""
        session = self.session
        inserted, updated = [], []
        for customer_id in self.dirty:
            segment = self.rows[customer_id]
            if segment is None:
                continue
            if customer_id in self.stored:
                updated.append(_UPDATED_VALUES(segment))
            else:
                inserted.append(_SEGMENT_VALUES(segment))
                self.stored.add(customer_id)
        self.dirty.clear()
        if inserted:
            await _INSERT_SEGMENTS.run(session, inserted)
        if updated:
            await _UPDATE_SEGMENTS.run(session, updated)
        if self.new_purchases:
            await _INSERT_PURCHASES.run(session, [p.as_row() for p in self.new_purchases.values()])
            self.new_purchases.clear()
        if self.changed_purchases:
            await _UPDATE_PURCHASES.run(
                session,
                [(p.amount_minor, p.fully_refunded, p.purchase_id) for p in self.changed_purchases.values()],
            )
            self.changed_purchases.clear()
        if self.signals:
            await _INSERT_SIGNALS.run(session, map(_SIGNAL_VALUES, self.signals))
            self.signals = []
        if self.history:
            await _INSERT_HISTORY.run(session, map(_HISTORY_VALUES, self.history))
            self.history = []


# The batch's writes, by raw executemany (shared.db.RawWrite): values in the tables' column order.
_INSERT_SEGMENTS = RawWrite(SEGMENT, COLUMNS)
_SEGMENT_VALUES = attrgetter(*COLUMNS)
_UPDATE_SEGMENTS = RawWrite(SEGMENT, UPDATED, key="customer_id")
_UPDATED_VALUES = attrgetter(*UPDATED, "customer_id")
_INSERT_PURCHASES = RawWrite(PURCHASE, LEDGER_COLUMNS)
_UPDATE_PURCHASES = RawWrite(PURCHASE, ("amount_minor", "fully_refunded"), key="purchase_id")
_SIGNAL_COLUMNS = tuple(column.key for column in SIGNAL.columns)
_INSERT_SIGNALS = RawWrite(SIGNAL, _SIGNAL_COLUMNS)
_SIGNAL_VALUES = itemgetter(*_SIGNAL_COLUMNS)
_HISTORY_COLUMNS = tuple(column.key for column in HISTORY.columns)
_INSERT_HISTORY = RawWrite(HISTORY, _HISTORY_COLUMNS)
_HISTORY_VALUES = itemgetter(*_HISTORY_COLUMNS)
