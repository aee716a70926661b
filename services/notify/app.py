"""The notify service's FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI

from services.notify import api, consumers
from services.notify.settings import NotifySettings
from shared import VERSION
from shared.clock import Clock
from shared.service import ServiceSpec, create_service_app

SPEC = ServiceSpec(
    name="notify",
    title="csm notify",
    description="Proactive follow-ups as messages and staff tasks, never sent twice.",
    version=VERSION,
    routers=[api.router],
    handlers=consumers.handlers,
    openapi_tags=[{"name": "notifications", "description": "Messages sent to customers."}],
)


def create_app(settings: NotifySettings | None = None, *, clock: Clock | None = None) -> FastAPI:
    return create_service_app(SPEC, settings or NotifySettings(), clock=clock)
