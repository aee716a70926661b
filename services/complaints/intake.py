"""What taking a complaint reads and writes, in as few statements as the rules allow.

Intake runs for every complaint from every channel, and on SQLite it holds the write lock from
its first statement to its commit, so each statement counts: everything it must know (the policy
version in force, the routing version, the customer's tier, whether the receiver is a team) is
read in one query, and the complaint, its first step and its clocks are written without the ORM's
unit-of-work bookkeeping for rows that are only inserted: on PostgreSQL in one statement (the
complaint and its first step in data-modifying CTEs of the clocks' INSERT), since there a
statement's cost is mostly its round trip and the driver's work around it; on SQLite, which has no
such statement, with one Core INSERT each.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached

from services.complaints.models import (
    Base,
    Complaint,
    CustomerTier,
    PolicyVersion,
    RoutingPolicyVersion,
    SlaClock,
    StaffTeam,
    Transition,
)


@dataclass(frozen=True)
class IntakeContext:
    """What a new complaint's owner, routing and promise depend on, read together."""

    policy_version: int
    routing_version: int
    # None: complaints has not heard of the customer yet (the default promise until the tier arrives).
    tier: str | None
    key_account: bool
    receiver_is_team: bool


async def read_context(*, session: AsyncSession, customer_id: uuid.UUID, receiver: str) -> IntakeContext:
    """One query for what intake reads (see ``CONTEXT``)."""
    return context_of((await session.execute(_CONTEXT, context_params(customer_id, receiver))).one())


def context_params(customer_id: uuid.UUID, receiver: str) -> dict[str, Any]:
    return {"customer_id": customer_id, "receiver": receiver}


def context_of(row: Sequence[Any]) -> IntakeContext:
    """The context from a row that ends with ``CONTEXT``'s columns."""
    policy_version, routing_version, tier, key_account, receiver_is_team = row[-len(CONTEXT) :]
    return IntakeContext(
        policy_version=int(policy_version or 0),
        routing_version=int(routing_version or 0),
        tier=tier,
        key_account=bool(key_account),
        receiver_is_team=bool(receiver_is_team),
    )


def _context_columns() -> tuple[sa.ColumnElement[Any], ...]:
    known = CustomerTier.customer_id == sa.bindparam("customer_id")
    return (
        sa.select(sa.func.max(PolicyVersion.version)).scalar_subquery(),
        sa.select(sa.func.max(RoutingPolicyVersion.version)).scalar_subquery(),
        sa.select(CustomerTier.tier).where(known).scalar_subquery(),
        sa.select(CustomerTier.key_account).where(known).scalar_subquery(),
        sa.exists().where(StaffTeam.name == sa.bindparam("receiver")),
    )


# What intake reads, as expressions: the highest stored versions (0: the shipped default, as
# shared.versioning counts them), the customer's tier and whether the receiver names a team. A
# request with an Idempotency-Key reads them in the statement that claims the key; built once,
# since building them cost as much as running them.
CONTEXT = _context_columns()
_CONTEXT = sa.select(*CONTEXT)


async def write_new(
    complaint: Complaint, *, session: AsyncSession, first_step: Transition, clocks: Iterable[SlaClock]
) -> None:
    """Insert a new complaint, its first step and its clocks; the complaint then belongs to the
    session as if it had been loaded, so that what the caller changes on it afterwards is flushed."""
    clock_rows = [row_of(clock) for clock in clocks]
    if session.get_bind().dialect.name == "postgresql":
        together = {
            **_prefixed("complaint", row_of(complaint)),
            **_prefixed("step", row_of(first_step)),
        }
        for number, clock_row in enumerate(clock_rows):
            together |= _prefixed(f"clock{number}", clock_row)
        await session.execute(_in_one_statement(len(clock_rows)), together)
    else:
        await session.execute(sa.insert(Complaint.__table__), row_of(complaint))
        await session.execute(sa.insert(Transition.__table__), row_of(first_step))
        await session.execute(sa.insert(SlaClock.__table__), clock_rows)
    make_transient_to_detached(complaint)
    session.add(complaint)


def row_of(instance: Base) -> dict[str, Any]:
    """The row a new instance stands for: its attributes, and a column's plain default where it has
    none. The defaults are set on the instance too, so that it reads as the stored row does."""
    row: dict[str, Any] = {}
    for column in instance.__table__.c:
        if column.key in instance.__dict__:
            row[column.key] = instance.__dict__[column.key]
            continue
        default = column.default
        value = default.arg if isinstance(default, sa.ColumnDefault) and default.is_scalar else None
        setattr(instance, column.key, value)
        row[column.key] = value
    return row


def _prefixed(prefix: str, row: dict[str, Any]) -> dict[str, Any]:
    return {f"{prefix}_{key}": value for key, value in row.items()}


def _bound(table: sa.Table, prefix: str) -> dict[str, sa.BindParameter[Any]]:
    """A row of ``table`` as parameters named after its columns, each with its column's type."""
    return {column.key: sa.bindparam(f"{prefix}_{column.key}", type_=column.type) for column in table.c}


@functools.cache
def _in_one_statement(clock_count: int) -> sa.Insert:
    """PostgreSQL: ``WITH complaint AS (INSERT …), step AS (INSERT …), … INSERT INTO sla_clock …``.

    The foreign keys of the step and the clocks are checked at the end of the statement, when the
    complaint is in. Each row is an INSERT of its own (a CTE but the last clock's): SQLAlchemy does not
    cache a multi-row VALUES, and compiling this statement costs more than running it. Built once per
    number of clocks: the same statement for every complaint.
    """

    def one_row(table: sa.Table, prefix: str) -> sa.Insert:
        return sa.insert(table).values(_bound(table, prefix))

    *earlier_clocks, last_clock = (
        one_row(SlaClock.__table__, f"clock{number}") for number in range(clock_count)
    )
    return last_clock.add_cte(
        one_row(Complaint.__table__, "complaint").cte("new_complaint"),
        one_row(Transition.__table__, "step").cte("first_step"),
        *(clock.cte(f"clock{number}") for number, clock in enumerate(earlier_clocks)),
    )
