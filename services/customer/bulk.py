"""Writing many rows at once: PostgreSQL's COPY where it is there, executemany on SQLite.

A bulk import writes millions of rows and as many outbox events; COPY moves them several times
faster than INSERT statements and commits with the same transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from services.customer.view_marks import touch
from shared.events import Event, encode, envelope_for
from shared.messaging import outbox_message

# Tables a 360 view shows, by their customer_id (the customer table itself by its id).
VIEWED_TABLES = frozenset(
    {"contact", "purchase", "purchase_summary", "interaction", "interest", "consent", "customer_tag"}
)


def dialect_of(*, session: AsyncSession) -> str:
    bind = session.bind
    assert bind is not None
    return bind.dialect.name


def one_of(column: Any, values: Collection[Any], *, session: AsyncSession) -> Any:
    """``column IN values``; on PostgreSQL one array parameter, not thousands of parameters."""
    if dialect_of(session=session) == "postgresql":
        return column == sa.any_(sa.bindparam(None, value=list(values), type_=postgresql.ARRAY(column.type)))
    return column.in_(list(values))


async def insert_rows(table: sa.Table, rows: Sequence[Mapping[str, Any]], *, session: AsyncSession) -> None:
    if not rows:
        return
    if table.name == "customer":
        touch((row["id"] for row in rows), session=session)
    elif "customer_id" in table.c and table.name in VIEWED_TABLES:
        touch((row["customer_id"] for row in rows), session=session)
    if dialect_of(session=session) != "postgresql":
        await session.execute(sa.insert(table), list(rows))
        return
    connection = await session.connection()
    # The transaction must be open before COPY goes round SQLAlchemy, or COPY would commit alone.
    await connection.exec_driver_sql("SELECT 1")
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    columns = list(rows[0])
    as_json = {column.name for column in table.columns if isinstance(column.type, sa.JSON)}
    records = [
        tuple(
            orjson.dumps(row[c]).decode() if c in as_json and row[c] is not None else row[c] for c in columns
        )
        for row in rows
    ]
    await driver.copy_records_to_table(table.name, records=records, columns=columns)


def outbox_row(event: Event, *, source: str, now: datetime) -> dict[str, Any]:
    """The outbox row ``shared.outbox.stage`` would write for ``event``, for writing many at once."""
    envelope = envelope_for(event, source=source, time=now)
    return {
        "event_id": envelope.id,
        "topic": event.topic,
        "key": envelope.partitionkey,
        "event_type": envelope.type,
        "body": encode(envelope),
        "created_at": now,
    }


async def stage_many(rows: Sequence[Mapping[str, Any]], *, session: AsyncSession) -> None:
    """Write prepared outbox rows in the session's transaction (the relay publishes them after commit)."""
    await insert_rows(outbox_message, rows, session=session)
