"""A stopping service does not hang on a worker that will not stop; it names that worker."""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest

from shared import service
from shared.broker import EmbeddedBroker
from shared.service import ServiceSpec, Worker, create_service_app
from shared.settings import ServiceSettings
from tests.harness import Databases, common_settings_for_tests


async def test_a_worker_that_ignores_cancellation_is_named_and_left_behind(
    broker: EmbeddedBroker,
    databases: Databases,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(service, "SHUTDOWN_GRACE_SECONDS", 0.5)
    started = asyncio.Event()
    release = asyncio.Event()

    async def stubborn() -> None:
        started.set()
        while not release.is_set():
            try:
                await release.wait()
            except asyncio.CancelledError:
                continue  # the defect this guards against: a worker that swallows its cancellation

    spec = ServiceSpec(
        name="notify",  # a known service, for its topic
        title="t",
        description="t",
        version="0",
        routers=(),
        workers=lambda _runtime: [Worker("never-stops", stubborn)],
    )
    settings = ServiceSettings(
        database_url=await databases.create("notify"),
        port=0,
        common=common_settings_for_tests(broker.bootstrap, f"t{uuid.uuid4().hex[:8]}."),
    )
    app = create_service_app(spec, settings)
    caplog.set_level(logging.ERROR, logger="csm.service")
    try:
        async with app.router.lifespan_context(app):
            await asyncio.wait_for(started.wait(), 30)
        stuck = [r.getMessage() for r in caplog.records if "did not stop" in r.getMessage()]
        assert stuck == ["notify:never-stops did not stop within 0.5 s of being cancelled"]
    finally:
        release.set()
        await asyncio.sleep(0)
