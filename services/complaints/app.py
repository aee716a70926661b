"""The complaints service's FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI

from services.complaints import (
    agent_reports_api,
    api,
    consumers,
    conversation_api,
    directory_api,
    imap,
    macros_api,
    mail_listener,
    management_api,
    routing_api,
    scanner,
)
from services.complaints.settings import ComplaintsSettings
from shared import VERSION
from shared.audit import audit_router
from shared.clock import Clock
from shared.service import ServiceSpec, create_service_app

SPEC = ServiceSpec(
    name="complaints",
    title="csm complaints",
    description="Complaints from every channel, owned by whoever first received them, on tier-based SLA "
    "promises that warn, breach and escalate.",
    version=VERSION,
    routers=[
        api.router,
        conversation_api.router,
        management_api.router,
        agent_reports_api.router,
        directory_api.router,
        macros_api.router,
        routing_api.router,
        audit_router(),
    ],
    handlers=consumers.handlers,
    workers=lambda runtime: [
        *scanner.workers(runtime),
        *mail_listener.workers(runtime),
        *imap.workers(runtime),
    ],
    openapi_tags=[
        {"name": "audit", "description": "Who changed what and when (managers and admins)."},
        {"name": "complaints", "description": "Complaint tickets, their workflow, compensation and surveys."},
        {
            "name": "conversation",
            "description": "Each complaint's messages, replies and internal notes; mail awaiting triage.",
        },
        {"name": "management", "description": "The complaint policy and the analytics."},
        {"name": "people", "description": "The staff directory: people, teams, hours and capacity."},
        {"name": "macros", "description": "Canned replies with placeholders, in Chinese and English."},
    ],
)


def create_app(settings: ComplaintsSettings | None = None, *, clock: Clock | None = None) -> FastAPI:
    return create_service_app(SPEC, settings or ComplaintsSettings(), clock=clock)
