"""The segmentation service's FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI

from services.segmentation import api, consumers
from services.segmentation.settings import SegmentationSettings
from shared import VERSION
from shared.clock import Clock
from shared.service import ServiceSpec, create_service_app

SPEC = ServiceSpec(
    name="segmentation",
    title="csm segmentation",
    description="Customers classified the ways the practice does, re-tiered the moment something happens.",
    version=VERSION,
    routers=[api.router],
    handlers=consumers.handlers,
    openapi_tags=[{"name": "segments", "description": "Tiers, the figures behind them, and their history."}],
)


def create_app(settings: SegmentationSettings | None = None, *, clock: Clock | None = None) -> FastAPI:
    return create_service_app(SPEC, settings or SegmentationSettings(), clock=clock)
