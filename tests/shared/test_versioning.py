"""Versioned documents: each save takes the next number, per key; a number already taken is a 409."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import ClassVar

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import Database
from shared.versioning import ConcurrentVersion, add_next_version, latest_version
from tests.harness import Databases


class Base(DeclarativeBase):
    __table__: ClassVar[sa.Table]


class Document(Base):
    __tablename__ = "versioned_document"
    __table_args__ = (sa.UniqueConstraint("key", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(sa.String(20))
    version: Mapped[int]
    body: Mapped[str] = mapped_column(sa.String(100))


@pytest.fixture
async def db(databases: Databases) -> AsyncIterator[Database]:
    database = Database(await databases.create("customer"))
    async with database.engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    yield database
    await database.dispose()


async def save(db: Database, key: str, body: str) -> int:
    async with db.unit_of_work() as session:
        row = await add_next_version(
            lambda version: Document(key=key, version=version, body=body),
            session=session,
            version=Document.version,
            where=(Document.key == key,),
        )
        return row.version


async def test_versions_count_from_one_per_key(db: Database) -> None:
    async with db.read() as session:
        assert await latest_version(session=session, version=Document.version) == 0
    assert [await save(db, "welcome", f"draft {n}") for n in range(3)] == [1, 2, 3]
    assert await save(db, "survey", "first") == 1
    async with db.read() as session:
        assert await latest_version(session=session, version=Document.version) == 3
        assert (
            await latest_version(session=session, version=Document.version, where=(Document.key == "survey",))
            == 1
        )
        stored = (await session.execute(sa.select(Document.key, Document.version, Document.body))).all()
    assert sorted(stored) == [
        ("survey", 1, "first"),
        ("welcome", 1, "draft 0"),
        ("welcome", 2, "draft 1"),
        ("welcome", 3, "draft 2"),
    ]


async def test_a_version_taken_meanwhile_is_a_409_and_the_transaction_goes_on(db: Database) -> None:
    await save(db, "welcome", "theirs")
    # A save that did not see the stored version (as one racing it would not) picks the same
    # number; the unique key refuses it, and only that statement is undone.
    async with db.unit_of_work() as session:
        session.add(Document(key="other", version=7, body="same transaction"))
        with pytest.raises(ConcurrentVersion) as refused:
            await add_next_version(
                lambda version: Document(key="welcome", version=version, body="mine"),
                session=session,
                version=Document.version,
                where=(Document.key == "nobody",),
            )
        assert refused.value.status == 409 and refused.value.slug == "concurrent-version"
        assert "read it and try again" in str(refused.value)
    async with db.read() as session:
        stored = (await session.execute(sa.select(Document.key, Document.version, Document.body))).all()
    assert sorted(stored) == [("other", 7, "same transaction"), ("welcome", 1, "theirs")]
