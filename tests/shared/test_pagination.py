"""Keyset pages: every row exactly once, in order, on both databases; a foreign cursor is a 422."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, InstrumentedAttribute, Mapped, mapped_column

from shared.db import Database, UtcDateTime
from shared.pagination import encode_cursor, keyset_page
from shared.problems import Unprocessable
from tests.harness import Databases

START = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)


class Base(DeclarativeBase):
    __table__: ClassVar[sa.Table]


class Entry(Base):
    __tablename__ = "page_entry"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    step: Mapped[int] = mapped_column(unique=True)
    group: Mapped[str] = mapped_column(sa.String(10))


@pytest.fixture
async def db(databases: Databases) -> AsyncIterator[Database]:
    database = Database(await databases.create("customer"))
    async with database.engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
        # Several rows share each moment, so the id must break the ties; the ids are random.
        await connection.execute(
            sa.insert(Entry.__table__),
            [
                {"id": uuid.uuid4(), "at": START + timedelta(minutes=n // 3), "step": n, "group": "ab"[n % 2]}
                for n in range(23)
            ],
        )
    yield database
    await database.dispose()


async def every_page(
    db: Database, order: list[InstrumentedAttribute[Any]], *, descending: bool, limit: int, **where: Any
) -> tuple[list[list[tuple[datetime, uuid.UUID, int]]], list[str | None]]:
    """Each page's rows as (at, id, step), and the cursor each page gave."""
    pages: list[list[tuple[datetime, uuid.UUID, int]]] = []
    cursors: list[str | None] = []
    cursor: str | None = None
    query = sa.select(Entry).filter_by(**where)
    async with db.read() as session:
        while True:
            rows, cursor = await keyset_page(
                query, session=session, order=order, limit=limit, cursor=cursor, descending=descending
            )
            pages.append([(row.at, row.id, row.step) for row in rows])
            cursors.append(cursor)
            if cursor is None:
                return pages, cursors


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("limit", [1, 5, 23, 50])
async def test_pages_by_time_and_id_cover_every_row_once_in_order(
    db: Database, descending: bool, limit: int
) -> None:
    pages, cursors = await every_page(db, [Entry.at, Entry.id], descending=descending, limit=limit)
    seen = [(at, key) for page in pages for at, key, _ in page]
    assert len(seen) == 23 and len(set(seen)) == 23
    assert seen == sorted(seen, reverse=descending)
    assert all(len(page) == limit for page in pages[:-1]) and 0 < len(pages[-1]) <= limit
    assert cursors[-1] is None and all(cursors[:-1])


@pytest.mark.parametrize("descending", [False, True])
async def test_pages_by_a_number_within_a_filter(db: Database, descending: bool) -> None:
    pages, _ = await every_page(db, [Entry.step], descending=descending, limit=4, group="a")
    steps = [step for page in pages for _, _, step in page]
    assert steps == sorted(range(0, 23, 2), reverse=descending)


async def test_the_last_page_has_no_cursor_even_when_it_is_full(db: Database) -> None:
    pages, cursors = await every_page(db, [Entry.step], descending=False, limit=23)
    assert [len(page) for page in pages] == [23] and cursors == [None]


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        encode_cursor("yesterday", str(uuid.uuid4())),
        encode_cursor(START.isoformat(), "not-an-id"),
        encode_cursor(START.isoformat()),
        encode_cursor(START.isoformat(), str(uuid.uuid4()), 3),
    ],
)
async def test_a_cursor_this_list_did_not_give_out_is_a_422_naming_the_cursor(
    db: Database, cursor: str
) -> None:
    async with db.read() as session:
        with pytest.raises(Unprocessable) as refused:
            await keyset_page(
                sa.select(Entry), session=session, order=[Entry.at, Entry.id], limit=5, cursor=cursor
            )
    assert refused.value.extensions["errors"][0]["field"] == "cursor"
    assert refused.value.extensions["errors"][0]["location"] == "query"


@pytest.mark.parametrize("cursor", [encode_cursor("3"), encode_cursor(True), encode_cursor(2.5)])
async def test_a_number_cursor_must_be_a_whole_number(db: Database, cursor: str) -> None:
    async with db.read() as session:
        with pytest.raises(Unprocessable):
            await keyset_page(sa.select(Entry), session=session, order=[Entry.step], limit=5, cursor=cursor)
