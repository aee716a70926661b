"""The customer service's FastAPI app: ``uvicorn --factory services.customer.app:create_app``."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI

from services.customer import api, consumers, imports_api, rates_api, records_api, view_model
from services.customer.import_jobs import ImportWorker
from services.customer.settings import CustomerSettings
from services.customer.view import View
from shared import VERSION
from shared.audit import audit_router
from shared.clock import Clock
from shared.service import Runtime, ServiceSpec, Worker, create_service_app


def workers(runtime: Runtime) -> Sequence[Worker]:
    return [Worker("imports", ImportWorker(runtime).run)]


SPEC = ServiceSpec(
    name="customer",
    title="csm customer",
    description="The customer information base and the one-stop 360 view that every channel shares.",
    version=VERSION,
    routers=[api.router, records_api.router, imports_api.router, rates_api.router, audit_router()],
    handlers=consumers.handlers,
    workers=workers,
    # CSV imports stream their body to a spool and have their own cap (import_max_bytes).
    streamed_paths=("/imports",),
    openapi_tags=[
        {"name": "audit", "description": "Who changed what and when (managers and admins)."},
        {
            "name": "customers",
            "description": "Profiles, search, the 360 view, duplicates, merge and erasure.",
        },
        {
            "name": "customer records",
            "description": "Purchases, refunds, interactions, interests, consent, contacts "
            "and the relationship record.",
        },
        {"name": "imports", "description": "Bulk import of existing customers and purchases from CSV."},
        {
            "name": "exchange rates",
            "description": "The rates purchases in other currencies are converted at into the reporting one.",
        },
    ],
)


def create_app(settings: CustomerSettings | None = None, *, clock: Clock | None = None) -> FastAPI:
    settings = settings or CustomerSettings()
    app = create_service_app(SPEC, settings, clock=clock)
    # One view builder per app: the API reads with it and every commit keeps the read model with it.
    app.state.customer_view = View(settings, settings.common.currency)
    view_model.install(app.state.runtime.db, app.state.customer_view)
    return app
