"""Segmentation's rows written by raw ``executemany`` (``shared.db.RawWrite``, as ``applying.Batch``
writes them) are stored exactly as a Core statement stores them, on every column type of its tables."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa

from services.segmentation.models import BehaviourSignal, CustomerSegment, Purchase, TierChange
from shared.db import Database, RawWrite, UtcDateTime
from tests.harness import Databases

TABLES = [model.__table__ for model in (CustomerSegment, Purchase, BehaviourSignal, TierChange)]
# Not UTC, with microseconds; UTC without; far back (a four-digit year written with its zeros).
MOMENTS = [
    datetime(2026, 12, 4, 19, 18, 52, 336632, tzinfo=timezone(timedelta(hours=8))),
    datetime(2026, 12, 4, 11, 18, 52, tzinfo=UTC),
    datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
]


@pytest.fixture
async def db(databases: Databases) -> AsyncIterator[Database]:
    database = Database(await databases.create("segmentation"))
    yield database
    await database.dispose()


def value_of(column: sa.Column[Any], variant: int) -> Any:
    """A value of the column's type; the nullable ones are None in one variant of three."""
    if column.nullable and not column.primary_key and variant == 2:
        return None
    kind = column.type
    if isinstance(kind, sa.Uuid):
        return uuid.uuid4()
    if isinstance(kind, UtcDateTime):
        return MOMENTS[variant]
    if isinstance(kind, sa.Boolean):
        return variant == 0
    if isinstance(kind, sa.Float):
        return 1.5 + variant
    if isinstance(kind, sa.Integer):
        return 7 + variant
    if isinstance(kind, sa.String):
        return f"text {variant}"[-(kind.length or 10) :]
    raise AssertionError(f"no example value for {column.name}'s type {kind!r}")


async def stored(db: Database, table: sa.Table) -> dict[str, tuple[object, ...]]:
    """The rows as the database holds them, read without SQLAlchemy's types, by their key's text."""
    names = [column.name for column in table.columns]
    [key] = [column.name for column in table.primary_key.columns]
    async with db.read() as session:
        result = await (await session.connection()).exec_driver_sql(
            f"SELECT {', '.join(names)} FROM {table.name}"
        )
        rows = [dict(zip(names, row, strict=True)) for row in result.all()]
    return {str(row.pop(key)).replace("-", ""): tuple(row.values()) for row in rows}


async def insert_both_ways(
    db: Database, table: sa.Table, pairs: list[tuple[dict[str, Any], dict[str, Any]]]
) -> None:
    """Each pair's first row by ``RawWrite``, its second by a Core insert, in one transaction."""
    names = [column.name for column in table.columns]
    async with db.unit_of_work() as session:
        await RawWrite(table, names).run(session, [[raw[name] for name in names] for raw, _ in pairs])
        await session.execute(table.insert(), [core for _, core in pairs])


@pytest.mark.parametrize("table", TABLES, ids=lambda table: table.name)
async def test_rows_inserted_raw_are_stored_as_core_stores_them(db: Database, table: sa.Table) -> None:
    [key] = [column.name for column in table.primary_key.columns]
    pairs = []
    for variant in range(3):
        row = {column.name: value_of(column, variant) for column in table.columns}
        pairs.append((row, {**row, key: uuid.uuid4()}))
    await insert_both_ways(db, table, pairs)
    rows = await stored(db, table)
    for raw, core in pairs:
        raw_row, core_row = rows[raw[key].hex], rows[core[key].hex]
        assert [type(value) for value in raw_row] == [type(value) for value in core_row]
        assert raw_row == core_row
    async with db.read() as session:
        back = {row._mapping[key]: row._asdict() for row in await session.execute(sa.select(table))}
    for raw, _ in pairs:
        assert back[raw[key]] == {
            name: value.astimezone(UTC) if isinstance(value, datetime) else value
            for name, value in raw.items()
        }


@pytest.mark.parametrize("table", TABLES, ids=lambda table: table.name)
async def test_rows_sharing_values_are_stored_as_core_stores_them(db: Database, table: sa.Table) -> None:
    """A value converted once is reused for the same object in the next row, and only for it."""
    [key] = [column.name for column in table.primary_key.columns]
    # The same objects in runs of rows, then others, then the first ones again.
    shared = [{column.name: value_of(column, variant) for column in table.columns} for variant in range(3)]
    pairs = []
    for variant in (0, 0, 1, 0, 2, 2, 1):
        row = {**shared[variant], key: uuid.uuid4()}
        pairs.append((row, {**row, key: uuid.uuid4()}))
    await insert_both_ways(db, table, pairs)
    rows = await stored(db, table)
    for raw, core in pairs:
        assert rows[raw[key].hex] == rows[core[key].hex]


@pytest.mark.parametrize("table", TABLES[:2], ids=lambda table: table.name)
async def test_rows_updated_raw_by_key_are_stored_as_core_stores_them(db: Database, table: sa.Table) -> None:
    [key] = [column.name for column in table.primary_key.columns]
    changed = [column.name for column in table.columns if column.name != key]
    raw_id, core_id = uuid.uuid4(), uuid.uuid4()
    first = {column.name: value_of(column, 1) for column in table.columns}
    later = {column.name: value_of(column, 0) for column in table.columns}
    async with db.unit_of_work() as session:
        await session.execute(table.insert(), [{**first, key: raw_id}, {**first, key: core_id}])
    async with db.unit_of_work() as session:
        await RawWrite(table, changed, key=key).run(session, [[*(later[name] for name in changed), raw_id]])
        await session.execute(
            table.update().where(table.c[key] == core_id).values({name: later[name] for name in changed})
        )
    rows = await stored(db, table)
    assert rows[raw_id.hex] == rows[core_id.hex]
    assert [type(value) for value in rows[raw_id.hex]] == [type(value) for value in rows[core_id.hex]]


async def test_a_naive_time_is_refused(db: Database) -> None:
    table = Purchase.__table__
    row = {column.name: value_of(column, 0) for column in table.columns} | {
        "purchased_at": datetime(2026, 1, 1)
    }
    names = list(row)
    with pytest.raises(ValueError, match="naive datetime"):
        async with db.unit_of_work() as session:
            await RawWrite(table, names).run(session, [[row[name] for name in names]])
