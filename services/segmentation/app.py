"""The segmentation service's FastAPI app."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from fastapi import FastAPI

from services.segmentation import analytics_api, api, batch, consumers
from services.segmentation.settings import SegmentationSettings
from shared import VERSION
from shared.audit import audit_router
from shared.clock import Clock
from shared.service import Runtime, ServiceSpec, Worker, create_service_app

log = logging.getLogger("csm.segmentation")


def workers(runtime: Runtime) -> Sequence[Worker]:
    settings = runtime.settings
    assert isinstance(settings, SegmentationSettings)

    async def scheduler() -> None:
        """Run the batch when it is due; the due time lives in the database, so restarts keep the schedule."""
        while True:
            async with runtime.db.unit_of_work() as session:
                now = runtime.clock.now()
                if await batch.due(now, session=session):
                    await batch.recompute(session=session, now=now, trigger="schedule")
            await asyncio.sleep(settings.batch_check_seconds)

    return [Worker("segmentation-batch", scheduler)]


SPEC = ServiceSpec(
    name="segmentation",
    title="csm segmentation",
    description="Customers classified the ways the practice does, re-tiered the moment something happens.",
    version=VERSION,
    routers=[api.router, api.policy_router, api.cut_points_router, analytics_api.router, audit_router()],
    handlers=consumers.handlers,
    apply_batch=consumers.apply_batch,
    workers=workers,
    openapi_tags=[
        {"name": "audit", "description": "Who changed what and when (managers and admins)."},
        {"name": "segments", "description": "Where each customer stands, why, and their history."},
        {
            "name": "policy",
            "description": "The segmentation policy as versioned data; cut points; the batch.",
        },
        {
            "name": "analytics",
            "description": "Distributions, the Pareto curve, migration, retention and churn.",
        },
    ],
)


def create_app(settings: SegmentationSettings | None = None, *, clock: Clock | None = None) -> FastAPI:
    return create_service_app(SPEC, settings or SegmentationSettings(), clock=clock)
