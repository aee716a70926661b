"""The notify service's background workers: the dispatcher and the scanner.

Both look at due times in the database against the injected clock, so they survive restarts
and tests move time instead of waiting. Several replicas may run them: claims are row locks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import cast

from services.notify import announcements, runs, schedules
from services.notify.dispatch import Dispatcher, ring
from services.notify.settings import NotifySettings
from shared.service import Runtime, Worker

log = logging.getLogger("csm.notify.workers")

RUN_BATCH = 200


class Scanner:
    """Takes the next steps of waiting runs, starts calendar playbooks, matches announcements."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.settings = cast(NotifySettings, runtime.settings)

    async def run(self) -> None:
        while True:
            busy = await self.scan_once()
            if not busy:
                await asyncio.sleep(self.settings.scan_poll_seconds)

    async def scan_once(self) -> bool:
        """One pass; True if there may be more to do at once."""
        db, now, settings = self.runtime.db, self.runtime.clock.now(), self.settings
        async with db.unit_of_work() as session:
            moved = await runs.resume_due(session, settings=settings, now=now, limit=RUN_BATCH)
        async with db.unit_of_work() as session:
            started = await schedules.fan_out(session, settings=settings, now=now)
        async with db.unit_of_work() as session:
            looked_at = await announcements.match_next_batch(
                session, settings=settings, now=now, limit=settings.announcement_batch_size
            )
        if moved or started or looked_at:
            ring(db.url)
        return moved >= RUN_BATCH or looked_at >= settings.announcement_batch_size


def workers(runtime: Runtime) -> Sequence[Worker]:
    return [Worker("dispatcher", Dispatcher(runtime).run), Worker("scanner", Scanner(runtime).run)]
