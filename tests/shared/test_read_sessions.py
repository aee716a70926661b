"""Reading sessions: no transaction round trips on PostgreSQL, and a connection the server ended is
replaced without failing the request (pinged when it lay idle, retried when it was in use a moment ago)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from shared import db as db_module
from shared.db import Database
from tests.harness import Databases


@pytest.fixture
async def db(databases: Databases) -> AsyncIterator[Database]:
    database = Database(await databases.create("customer", migrate=False))
    async with database.engine.begin() as connection:
        await connection.execute(sa.text("CREATE TABLE read_probe (n integer)"))
        await connection.execute(sa.text("INSERT INTO read_probe VALUES (1), (2)"))
    yield database
    await database.dispose()


def postgresql_only(db: Database) -> None:
    if db.dialect != "postgresql":
        pytest.skip("PostgreSQL only (set CSM_TEST_POSTGRES)")


async def test_reads_see_committed_rows_and_change_nothing(db: Database) -> None:
    async with db.read() as session:
        assert (await session.scalar(sa.text("SELECT sum(n) FROM read_probe"))) == 3
    async with db.unit_of_work() as session:
        await session.execute(sa.text("INSERT INTO read_probe VALUES (4)"))
    async with db.read() as session:
        assert (await session.scalar(sa.text("SELECT sum(n) FROM read_probe"))) == 7


async def test_a_read_on_postgresql_opens_no_transaction(db: Database) -> None:
    postgresql_only(db)
    # now() is the moment the transaction began: two statements of one transaction see the same one.
    now = sa.text("SELECT now()")
    async with db.read() as session:
        first, second = await session.scalar(now), await session.scalar(now)
        assert first != second, "each statement of a read stands alone: no BEGIN, no ROLLBACK"
    async with db.unit_of_work() as session:
        first, second = await session.scalar(now), await session.scalar(now)
        assert first == second, "a unit of work is one transaction"


async def _pid(db: Database) -> int:
    async with db.read() as session:
        pid = await session.scalar(sa.text("SELECT pg_backend_pid()"))
    assert isinstance(pid, int)
    return pid


async def _terminate(db: Database, pid: int) -> None:
    """End a backend from outside the pool, as a server restart or an idle timeout would."""
    other = Database(db.url)
    try:
        async with other.engine.connect() as connection:
            await connection.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        await other.dispose()


async def test_a_read_on_a_connection_the_server_just_ended_is_run_again(db: Database) -> None:
    postgresql_only(db)
    first = await _pid(db)
    await _terminate(db, first)  # given back a moment ago: not pinged at its next checkout
    async with db.read() as session:
        assert (await session.scalar(sa.text("SELECT sum(n) FROM read_probe"))) == 3
        assert (await session.scalar(sa.text("SELECT pg_backend_pid()"))) != first


async def test_a_connection_that_lay_idle_is_pinged_before_use(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    postgresql_only(db)
    monkeypatch.setattr(db_module, "PING_AFTER_IDLE_SECONDS", 0.0)  # every pooled connection is idle
    first = await _pid(db)
    await _terminate(db, first)
    # A unit of work is not run again: it gets a live connection because the dead one was pinged.
    async with db.unit_of_work() as session:
        await session.execute(sa.text("INSERT INTO read_probe VALUES (4)"))
        assert (await session.scalar(sa.text("SELECT pg_backend_pid()"))) != first
    assert (await _pid(db)) != first
