"""The outbox relay's doorbell across processes: PostgreSQL ``LISTEN``/``NOTIFY``.

A commit that staged events rings ``Database.doorbells.outbox``, which wakes the relay at once, but only
in the process that committed. When a service's events are consumed by several processes (see
``ServiceSettings.consumer_processes``), only the first runs the relay; a process without it
(consumer-only, or API-only with ``run_workers`` off) forwards each ring as a ``NOTIFY`` on the
service's database, and the relay's process listens and rings its own doorbell. A notification is
sent after the commit, so what it announces is visible to the relay; one that is lost (the listener
was reconnecting) costs at most the relay's poll interval.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import sqlalchemy as sa

from shared.db import Database

log = logging.getLogger("csm.outbox")

# Channels are per database, and each service has its own: one name serves them all.
CHANNEL = "csm_outbox"


async def ring(db: Database) -> None:
    """In a process without the relay: forward each wake-up to the relay's process, for ever."""
    with db.doorbells.outbox.listen() as rung:
        while True:
            await rung.wait()
            # Commits that come while the notification is on its way ride on it.
            rung.clear()
            async with db.engine.connect() as connection:
                await connection.execute(sa.select(sa.func.pg_notify(CHANNEL, "")))
                await connection.commit()


async def listen(db: Database) -> None:
    """In the relay's process: wake the relay whenever another process rings, for ever.

    Raises when the listening connection is lost, so that its supervisor listens again.
    """
    lost = asyncio.Event()

    def rung(*_: Any) -> None:
        db.doorbells.outbox.ring()

    def terminated(*_: Any) -> None:
        lost.set()

    async with db.engine.connect() as connection:
        raw = await connection.get_raw_connection()
        driver: Any = raw.driver_connection  # an asyncpg connection: LISTEN needs the driver itself
        await driver.add_listener(CHANNEL, rung)
        driver.add_termination_listener(terminated)
        # What was committed while nobody listened is published now rather than at the next poll.
        db.doorbells.outbox.ring()
        try:
            await lost.wait()
        finally:
            if not driver.is_closed():
                await driver.remove_listener(CHANNEL, rung)
            driver.remove_termination_listener(terminated)
    raise ConnectionError("the connection listening for the outbox's doorbell was lost")
