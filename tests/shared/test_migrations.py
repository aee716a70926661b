"""Each service's migrations build exactly what its models describe, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import importlib

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from services.registry import SERVICES
from shared import migrations
from shared.db import create_engine
from shared.messaging import MESSAGING_METADATA
from tests.harness import Databases


async def differences(service: str, url: str) -> list[object]:
    metadata = importlib.import_module(f"services.{service}.models").Base.metadata
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"compare_type": True}),
                    # Typed as one MetaData, but alembic compares a list as env.py's target_metadata.
                    [metadata, MESSAGING_METADATA],  # type: ignore[arg-type]
                )
            )
    finally:
        await engine.dispose()


async def tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return set(await connection.run_sync(lambda sync: sa.inspect(sync).get_table_names()))
    finally:
        await engine.dispose()


@pytest.mark.parametrize("service", list(SERVICES))
async def test_migrations_match_the_models_and_go_down_and_up_again(
    databases: Databases, service: str
) -> None:
    url = await databases.create(service)
    assert await differences(service, url) == []
    assert {"outbox_message", "inbox_message", "bus_state"} <= await tables(url)
    await migrations.downgrade(service, url, "base")
    assert await tables(url) <= {"alembic_version"}
    await migrations.upgrade(service, url)
    assert await differences(service, url) == []
