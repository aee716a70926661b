"""The customer service's FastAPI app: ``uvicorn --factory services.customer.app:create_app``."""

from __future__ import annotations

from fastapi import FastAPI

from services.customer import api, consumers
from services.customer.settings import CustomerSettings
from shared import VERSION
from shared.clock import Clock
from shared.service import ServiceSpec, create_service_app

SPEC = ServiceSpec(
    name="customer",
    title="csm customer",
    description="The customer information base and the one-stop 360 view that every channel shares.",
    version=VERSION,
    routers=[api.router],
    handlers=consumers.handlers,
    openapi_tags=[{"name": "customers", "description": "Profiles and purchases."}],
)


def create_app(settings: CustomerSettings | None = None, *, clock: Clock | None = None) -> FastAPI:
    return create_service_app(SPEC, settings or CustomerSettings(), clock=clock)
