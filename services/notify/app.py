"""The notify service's FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI

from services.notify import api, consumers, workers
from services.notify.settings import NotifySettings
from shared import VERSION
from shared.audit import audit_router
from shared.clock import Clock
from shared.service import ServiceSpec, create_service_app

SPEC = ServiceSpec(
    name="notify",
    title="csm notify",
    description="Proactive follow-ups from playbooks: messages by e-mail, SMS, webhook and in-app, and staff "
    "tasks, each exactly once.",
    version=VERSION,
    routers=[*api.ROUTERS, audit_router()],
    handlers=consumers.handlers,
    workers=workers.workers,
    openapi_tags=[
        {"name": "audit", "description": "Who changed what and when (managers and admins)."},
        {
            "name": "notifications",
            "description": "Messages to customers and alerts to staff, with delivery status.",
        },
        {"name": "preferences", "description": "Each customer's channel choices and quiet hours."},
        {
            "name": "playbooks",
            "description": "Follow-up playbooks and the policy, as versioned data; the dry run.",
        },
        {"name": "tasks", "description": "Work for staff: care calls, visits, reviews."},
        {"name": "announcements", "description": "News matched to customers' interests."},
        {"name": "webhooks", "description": "Staff systems that receive signed alerts."},
    ],
)


def create_app(settings: NotifySettings | None = None, *, clock: Clock | None = None) -> FastAPI:
    return create_service_app(SPEC, settings or NotifySettings(), clock=clock)
