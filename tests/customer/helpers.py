"""What the customer tests share: registering through the API, and reading the database as it is."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from services.customer.purchases import PurchaseWindow
from shared.db import Database
from shared.messaging import outbox_message
from shared.roles import Role
from tests.harness import RunningService, Stack, auth


async def register(stack: Stack, **fields: object) -> dict[str, Any]:
    # Naming an account manager is a supervisor's act; the rest an agent's.
    who = auth(Role.supervisor) if "account_manager" in fields else auth()
    response = await stack["customer"].client.post(
        "/customers", json={"name": "Li Na", **fields}, headers=who
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def business(stack: Stack, **fields: object) -> dict[str, Any]:
    return await register(stack, **{"kind": "business", "name": "Acme Trading Co.", **fields})


async def staged(service: RunningService, event_type: str | None = None) -> list[dict[str, Any]]:
    """The envelopes in the outbox, in commit order (optionally of one type)."""
    db = Database(service.database_url)
    try:
        async with db.read() as session:
            query = sa.select(outbox_message.c.body).order_by(outbox_message.c.seq)
            if event_type is not None:
                query = query.where(outbox_message.c.event_type == event_type)
            return [json.loads(body) for body in (await session.scalars(query)).all()]
    finally:
        await db.dispose()


async def every_text(url: str) -> list[tuple[str, str]]:
    """(table, value) for every text and JSON value in every table of a database, outbox bodies included."""
    db = Database(url)
    found: list[tuple[str, str]] = []
    try:
        async with db.engine.connect() as connection:
            metadata = sa.MetaData()
            await connection.run_sync(metadata.reflect)
            for table in metadata.sorted_tables:
                rows = (await connection.execute(sa.select(table))).all()
                for row in rows:
                    for value in row:
                        if isinstance(value, bytes):
                            found.append((table.name, value.decode("utf-8", "replace")))
                        elif value is not None and not isinstance(value, int | float):
                            found.append((table.name, str(value)))
    finally:
        await db.dispose()
    return found


async def leaks(url: str, *secrets: str) -> list[tuple[str, str]]:
    """Where any of ``secrets`` still appears in the database at ``url``."""
    return [
        (table, secret)
        for table, text in await every_text(url)
        for secret in secrets
        if secret.lower() in text.lower()
    ]


# What the service's defaults allow: purchases from 1970 up to five minutes ahead of the clock.
WINDOW = PurchaseWindow(earliest=datetime(1970, 1, 1, tzinfo=UTC), skew=timedelta(minutes=5))
