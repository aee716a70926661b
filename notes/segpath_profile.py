"""CPU per event of segmentation's apply path in-process: ``python notes/segpath_profile.py N [--profile]``.

The consumer's ``_apply`` (inbox check, the segmentation batch, inbox rows, outbox rows, commit) on
SQLite, for N purchases of N new customers (each moves a tier and is announced: the heaviest case)
in batches of 500; no broker, no decoding. Prints process CPU per event; with --profile, the top
of a cProfile by cumulative and by own time.
"""

from __future__ import annotations

import asyncio
import cProfile
import pstats
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from services.segmentation.app import create_app
from services.segmentation.settings import SegmentationSettings
from shared.clock import ManualClock
from shared.events import envelope_for
from shared.events.customer import PurchaseRecorded, SalesChannel
from tests.harness import Databases, common_settings_for_tests

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


async def main(count: int, profile: bool) -> None:
    databases = Databases(Path(tempfile.mkdtemp()), None)
    url = await databases.create("segmentation")
    settings = SegmentationSettings(database_url=url, common=common_settings_for_tests("127.0.0.1:1", "p."))
    app = create_app(settings, clock=ManualClock(NOW))
    consumer = app.state.runtime.consumer
    events = [
        envelope_for(
            PurchaseRecorded(
                customer_id=uuid.uuid4(),
                purchase_id=uuid.uuid4(),
                order_id=f"SO-{n}",
                amount=Decimal(100 + n % 9000),
                currency="CNY",
                channel=SalesChannel.web,
                purchased_at=NOW - timedelta(days=n % 300),
                item_count=1,
                first_purchase=True,
            ),
            source="/bench",
        )
        for n in range(count)
    ]
    await consumer._apply(events[:500])  # warm up: caches, statements
    rest = events[500:]
    profiler = cProfile.Profile() if profile else None
    started = time.process_time()
    if profiler:
        profiler.enable()
    for start in range(0, len(rest), 500):
        await consumer._apply(rest[start : start + 500])
    if profiler:
        profiler.disable()
    cpu = time.process_time() - started
    print(f"{len(rest)} events: {cpu * 1e6 / len(rest):.0f} µs CPU per event")
    if profiler:
        stats = pstats.Stats(profiler)
        stats.sort_stats("cumulative").print_stats(30)
        stats.sort_stats("tottime").print_stats(25)
    await app.state.runtime.db.dispose()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), "--profile" in sys.argv))
