"""A service process keeps the database connections its busiest moment needs: serving as many requests
at once as its pool keeps opens no connection after the first such moment (a connection the pool closes
on return, because it already keeps enough idle ones, is opened again by a later request: a handshake,
and on PostgreSQL TLS negotiation and the driver's setup, on a request's path)."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from shared.db import Database
from shared.service import ServiceSpec, create_service_app
from shared.settings import MAX_OVERFLOW, POOL_SIZE, CommonSettings, ServiceSettings
from tests.harness import Databases, common_settings_for_tests


async def _at_once(database: Database, sessions: int) -> None:
    """``sessions`` reads, each holding its connection until all of them hold one."""
    everyone = asyncio.Barrier(sessions)

    async def one() -> None:
        async with database.read() as session:
            assert (await session.scalar(sa.text("SELECT 1"))) == 1
            await everyone.wait()

    await asyncio.gather(*(one() for _ in range(sessions)))


def _counted(database: Database) -> list[object]:
    """The connections ``database`` opens from now on."""
    opened: list[object] = []
    event.listen(database.engine.sync_engine, "connect", lambda dbapi, _record: opened.append(dbapi))
    return opened


async def test_as_many_requests_at_once_as_the_pool_keeps_open_no_connection_again(
    databases: Databases,
) -> None:
    database = Database(await databases.create("customer", migrate=False))
    opened = _counted(database)
    try:
        for _ in range(3):
            await _at_once(database, POOL_SIZE)
        assert len(opened) == POOL_SIZE, "the first moment opens them; the later ones reuse them"
        assert database.engine.pool.checkedin() == POOL_SIZE  # type: ignore[attr-defined]
    finally:
        await database.dispose()


async def test_above_the_pool_a_process_opens_connections_for_a_moment_up_to_the_overflow(
    databases: Databases,
) -> None:
    database = Database(await databases.create("customer", migrate=False), pool_size=2, max_overflow=3)
    opened = _counted(database)
    try:
        await _at_once(database, 5)
        assert len(opened) == 5
        assert database.engine.pool.checkedin() == 2, "the three above the pool are closed on return"  # type: ignore[attr-defined]
    finally:
        await database.dispose()


async def test_a_service_sizes_its_pool_from_the_settings(
    databases: Databases, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CSM_DATABASE_POOL_SIZE", "7")
    monkeypatch.setenv("CSM_DATABASE_MAX_OVERFLOW", "2")
    common = CommonSettings()
    assert (common.database_pool_size, common.database_max_overflow) == (7, 2)
    assert (CommonSettings.model_fields["database_pool_size"].default, MAX_OVERFLOW) == (POOL_SIZE, 10)
    spec = ServiceSpec(name="notify", title="t", description="t", version="0", routers=())
    tests_common = common_settings_for_tests("127.0.0.1:9", "pool.").model_copy(
        update={"database_pool_size": 7, "database_max_overflow": 2}
    )
    settings = ServiceSettings(database_url=await databases.create("notify"), port=0, common=tests_common)
    db = create_service_app(spec, settings).state.runtime.db
    try:
        pool = db.engine.pool
        assert (pool.size(), pool._max_overflow) == (7, 2)
    finally:
        await db.dispose()
