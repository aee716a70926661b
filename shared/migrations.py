"""Alembic, driven from code: every service keeps its migrations in ``services/<name>/migrations``.

The same migrations run on SQLite and PostgreSQL (batch mode on SQLite, for ALTERs it lacks).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, MetaData, make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db import create_engine, is_sqlite

SERVICES_DIR = Path(__file__).resolve().parent.parent / "services"


def alembic_config(service: str, url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SERVICES_DIR / service / "migrations"))
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    config.attributes["url"] = url
    return config


async def upgrade(service: str, url: str, revision: str = "head") -> None:
    """Bring ``service``'s database at ``url`` to ``revision``."""
    await _with_connection(service, url, lambda config: command.upgrade(config, revision))


async def downgrade(service: str, url: str, revision: str) -> None:
    await _with_connection(service, url, lambda config: command.downgrade(config, revision))


async def revision(service: str, url: str, message: str) -> None:
    """Write a new migration for ``service`` from the difference between its models and ``url``."""
    await _with_connection(
        service, url, lambda config: command.revision(config, message=message, autogenerate=True)
    )


async def is_current(service: str, url: str) -> bool:
    """Whether ``service``'s database at ``url`` exists and has the latest schema."""
    head = ScriptDirectory.from_config(alembic_config(service, url)).get_current_head()
    if is_sqlite(url) and not await asyncio.to_thread(Path(make_url(url).database or "").exists):
        return False  # do not leave an empty file behind by looking
    engine: AsyncEngine = create_engine(url)
    try:
        async with engine.connect() as connection:
            current = await connection.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision()
            )
    finally:
        await engine.dispose()
    return bool(current == head)


async def _with_connection(service: str, url: str, run: Callable[[Config], object]) -> None:
    engine: AsyncEngine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_run_sync, alembic_config(service, url), run)
    finally:
        await engine.dispose()


def _run_sync(connection: Connection, config: Config, run: Callable[[Config], object]) -> None:
    config.attributes["connection"] = connection
    run(config)


def run_env(target_metadata: Sequence[MetaData]) -> None:
    """The body of every service's ``migrations/env.py``."""
    connection: Connection | None = context.config.attributes.get("connection")
    if connection is not None:
        _configure_and_run(connection, target_metadata)
        return
    url = context.config.attributes.get("url")
    if url is None:
        raise RuntimeError("run migrations through `csm migrate`, which names the database")
    asyncio.run(_with_connection_url(url, target_metadata))


async def _with_connection_url(url: str, target_metadata: Sequence[MetaData]) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_configure_and_run, target_metadata)
    finally:
        await engine.dispose()


def _configure_and_run(connection: Connection, target_metadata: Sequence[MetaData]) -> None:
    context.configure(
        connection=connection,
        target_metadata=list(target_metadata),
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
