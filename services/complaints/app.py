"""The complaints service's FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI

from services.complaints import api, consumers
from services.complaints.settings import ComplaintsSettings
from shared import VERSION
from shared.clock import Clock
from shared.service import ServiceSpec, create_service_app

SPEC = ServiceSpec(
    name="complaints",
    title="csm complaints",
    description="Complaints from every channel, owned by whoever first received them.",
    version=VERSION,
    routers=[api.router],
    handlers=consumers.handlers,
    openapi_tags=[{"name": "complaints", "description": "Complaint tickets."}],
)


def create_app(settings: ComplaintsSettings | None = None, *, clock: Clock | None = None) -> FastAPI:
    return create_service_app(SPEC, settings or ComplaintsSettings(), clock=clock)
