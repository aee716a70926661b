"""The notify service's background workers: the dispatcher and the scanner.

Both look at due times in the database against the injected clock, so they survive restarts
and tests move time instead of waiting. Several replicas may run them: claims are row locks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import cast

import sqlalchemy as sa

from services.notify import announcements, runs, schedules
from services.notify.dispatch import Dispatcher, ring
from services.notify.models import Announcement, PlaybookRun
from services.notify.settings import NotifySettings
from shared.service import Runtime, Worker

log = logging.getLogger("csm.notify.workers")

RUN_BATCH = 200
SCHEDULE_LOOK = timedelta(minutes=1)


class Scanner:
    """Takes the next steps of waiting runs, starts calendar playbooks, matches announcements."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.settings = cast(NotifySettings, runtime.settings)
        self._schedules_checked: datetime | None = None

    def _schedules_due(self, now: datetime) -> bool:
        """Calendar playbooks are looked at once a minute of business time (the marks in the
        database say what was done; this only spares a transaction on every pass)."""
        if (
            self._schedules_checked is not None
            and timedelta(0) <= now - self._schedules_checked < SCHEDULE_LOOK
        ):
            return False
        self._schedules_checked = now
        return True

    async def run(self) -> None:
        while True:
            with self.runtime.tracing.scanning("playbook scan") as found:
                busy = await self.scan_once(found)
            if not busy:
                await asyncio.sleep(self.settings.scan_poll_seconds)

    async def scan_once(self, found: Callable[[], None] = lambda: None) -> bool:
        """One pass; True if there may be more to do at once. ``found`` is called if it did something."""
        db, now, settings = self.runtime.db, self.runtime.clock.now(), self.settings
        moved = started = looked_at = 0
        # Looks without a write lock decide whether a writing transaction is worth starting.
        async with db.read() as session:
            runs_due = await session.scalar(
                sa.select(PlaybookRun.id)
                .where(PlaybookRun.state == "waiting", PlaybookRun.due_at <= now)
                .limit(1)
            )
            matching = await session.scalar(
                sa.select(Announcement.id).where(Announcement.state == "matching").limit(1)
            )
        if runs_due is not None:
            async with db.unit_of_work() as session:
                moved = await runs.resume_due(session=session, settings=settings, now=now, limit=RUN_BATCH)
        if self._schedules_due(now):
            async with db.unit_of_work() as session:
                started = await schedules.fan_out(session=session, settings=settings, now=now)
        if matching is not None:
            async with db.unit_of_work() as session:
                looked_at = await announcements.match_next_batch(
                    session=session, settings=settings, now=now, limit=settings.announcement_batch_size
                )
        if moved or started or looked_at:
            found()
            ring(db)
        return moved >= RUN_BATCH or looked_at >= settings.announcement_batch_size


def workers(runtime: Runtime) -> Sequence[Worker]:
    return [Worker("dispatcher", Dispatcher(runtime).run), Worker("scanner", Scanner(runtime).run)]
