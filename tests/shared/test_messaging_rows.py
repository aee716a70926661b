"""Inbox and outbox rows written by raw ``executemany`` are stored exactly as a Core insert stores them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from shared.db import Database
from shared.messaging import inbox_message, outbox_message, write_inbox, write_outbox
from tests.harness import Databases


@pytest.fixture
async def db(databases: Databases) -> AsyncIterator[Database]:
    database = Database(await databases.create("customer"))
    yield database
    await database.dispose()


async def stored(db: Database, sql: str) -> list[tuple[object, ...]]:
    """The rows as the database holds them, read without SQLAlchemy's types."""
    async with db.read() as session:
        result = await (await session.connection()).exec_driver_sql(sql)
        return [tuple(row) for row in result.all()]


async def test_inbox_rows_written_raw_are_stored_as_core_stores_them(db: Database) -> None:
    # Not UTC, with microseconds: the stored form is naive UTC text on SQLite, timestamptz on PostgreSQL.
    at = datetime(2026, 12, 4, 19, 18, 52, 336632, tzinfo=timezone(timedelta(hours=8)))
    raw_ids, core_ids = [uuid.uuid4() for _ in range(3)], [uuid.uuid4() for _ in range(3)]
    async with db.unit_of_work() as session:
        await write_inbox(session, consumer="raw", event_ids=raw_ids, at=at)
        await write_inbox(session, consumer="none", event_ids=[], at=at)
        await session.execute(
            inbox_message.insert(),
            [{"consumer": "core", "event_id": i, "processed_at": at} for i in core_ids],
        )
    rows = await stored(db, "SELECT consumer, event_id, processed_at FROM inbox_message")
    by_consumer = {(consumer, index) for consumer, *_ in rows for index in [0]}
    assert by_consumer == {("raw", 0), ("core", 0)}
    raw = [row[1:] for row in rows if row[0] == "raw"]
    core = [row[1:] for row in rows if row[0] == "core"]
    assert {type(v) for row in raw for v in row} == {type(v) for row in core for v in row}
    assert {row[1] for row in raw} == {row[1] for row in core}
    # And they read back alike through the table's types.
    async with db.read() as session:
        back = (await session.execute(sa.select(inbox_message))).all()
    assert {row.event_id for row in back if row.consumer == "raw"} == set(raw_ids)
    assert {row.processed_at for row in back} == {at.astimezone(UTC)}


async def test_outbox_rows_written_raw_are_stored_as_core_stores_them(db: Database) -> None:
    at = datetime(2026, 12, 4, 11, 18, 52, tzinfo=UTC)
    raw_id, core_id = uuid.uuid4(), uuid.uuid4()
    async with db.unit_of_work() as session:
        await write_outbox(session, [(raw_id, "csm.customer", "k", "t.v1", b'{"a":1}')], at=at)
        await session.execute(
            outbox_message.insert().values(
                event_id=core_id,
                topic="csm.customer",
                key="k",
                event_type="t.v1",
                body=b'{"a":1}',
                created_at=at,
            )
        )
    rows = await stored(
        db,
        "SELECT event_id, topic, key, event_type, body, created_at, published_at"
        " FROM outbox_message ORDER BY seq",
    )
    [raw, core] = rows
    assert [type(v) for v in raw] == [type(v) for v in core]
    assert raw[1:] == core[1:]
    assert str(raw[0]).replace("-", "") == raw_id.hex and str(core[0]).replace("-", "") == core_id.hex
    async with db.read() as session:
        back = (await session.execute(sa.select(outbox_message).order_by(outbox_message.c.seq))).all()
    assert [(row.event_id, row.created_at, row.body) for row in back] == [
        (raw_id, at, b'{"a":1}'),
        (core_id, at, b'{"a":1}'),
    ]
