"""Several consumer processes per service: who runs what, the doorbell between them, and SQLite's refusal.

The processes themselves, joining and leaving while events flow, are in tests/e2e/test_scale_out.py.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from services.cli import app
from services.segmentation.settings import SegmentationSettings
from shared.db import Database
from shared.outbox_doorbell import listen, ring
from shared.settings import CommonSettings
from tests.harness import Databases, RunningService, Stack, eventually

SQLITE = "sqlite+aiosqlite:///segmentation.db"


def test_sqlite_refuses_a_second_consumer_process() -> None:
    with pytest.raises(ValidationError) as refused:
        SegmentationSettings(database_url=SQLITE, consumer_processes=2)
    assert "CSM_SEGMENTATION_CONSUMER_PROCESSES=2 needs PostgreSQL" in str(refused.value)
    with pytest.raises(ValidationError, match="needs PostgreSQL"):
        SegmentationSettings(database_url=SQLITE, consumer_only=True)
    assert SegmentationSettings(database_url=SQLITE).consumer_processes == 1
    settings = SegmentationSettings(database_url="postgresql+asyncpg://db/segmentation", consumer_processes=2)
    assert settings.consumer_processes == 2


def test_the_default_partitions_split_evenly_among_two_consumer_processes() -> None:
    partitions = CommonSettings().kafka_partitions
    assert partitions >= 2 * 4 and partitions % 2 == 0


@pytest.mark.parametrize("command", [["serve", "segmentation"], ["up"]])
def test_the_command_refuses_two_consumers_on_sqlite_with_the_reason(
    command: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CSM_VAR_DIR", str(tmp_path))
    for name in ("CUSTOMER", "SEGMENTATION", "COMPLAINTS", "NOTIFY"):
        monkeypatch.delenv(f"CSM_{name}_DATABASE_URL", raising=False)
        # The command sets it from --consumers; set here, it is put back after the test.
        monkeypatch.setenv(f"CSM_{name}_CONSUMER_PROCESSES", "1")
    result = CliRunner().invoke(app, [*command, "--consumers", "2"])
    assert result.exit_code == 2, result.output
    # The message as read, without the box it is drawn in and its line breaks.
    said = " ".join(re.sub("[│╭╮╰╯─]", " ", result.output).split())
    assert "CSM_SEGMENTATION_CONSUMER_PROCESSES=2 needs PostgreSQL" in said or command == ["up"], said
    assert "needs PostgreSQL: a SQLite database has one writer" in said, said


async def test_a_consumer_only_process_runs_the_consumer_alone_and_is_ready(
    stack: Stack, databases: Databases
) -> None:
    if databases.kind != "postgresql":
        pytest.skip("a consumer-only process needs PostgreSQL (CSM_TEST_POSTGRES)")
    first = await stack.start("segmentation")
    other = await stack.start("segmentation", database_url=first.database_url, consumer_only=True)

    def running(service: RunningService) -> set[str]:
        return {task.get_name().split(":", 1)[1] for task in service.runtime.tasks}

    assert running(first) == {
        "bus",
        "broker-watch",
        "outbox-relay",
        "outbox-doorbell",
        "consumer",
        "segmentation-batch",
    }
    # Neither the relay nor the scheduled batch: those run once, in the first process.
    assert running(other) == {"bus", "broker-watch", "consumer", "outbox-doorbell"}

    async def ready() -> None:
        response = await other.client.get("/readyz")
        assert response.status_code == 200, response.text

    await eventually(ready)


async def test_a_commit_in_another_process_rings_the_relays_doorbell(
    stack: Stack, databases: Databases
) -> None:
    """What a consumer-only process stages wakes the relay in the first process at once, not at its
    next poll: the commit's signal is forwarded over the database (LISTEN/NOTIFY)."""
    if databases.kind != "postgresql":
        pytest.skip("the doorbell between processes is PostgreSQL's LISTEN/NOTIFY (CSM_TEST_POSTGRES)")
    url = await databases.create("segmentation")
    relays, consumers = Database(url), Database(url)
    heard = asyncio.Event()
    relays.doorbells.outbox.add(heard)
    listening = asyncio.create_task(listen(relays))
    ringing = asyncio.create_task(ring(consumers))
    try:
        # The listener rings once on connecting (for what was committed meanwhile).
        await asyncio.wait_for(heard.wait(), 30)

        async def forwarding() -> None:
            assert consumers.doorbells.outbox.listeners == 1

        await eventually(forwarding)
        for _ in range(3):
            heard.clear()
            consumers.doorbells.outbox.ring()
            await asyncio.wait_for(heard.wait(), 30)
    finally:
        listening.cancel()
        ringing.cancel()
        await asyncio.gather(listening, ringing, return_exceptions=True)
        await relays.dispose()
        await consumers.dispose()
