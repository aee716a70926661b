"""Dependencies of the customer API."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.customer.settings import CustomerSettings
from services.customer.view import View
from shared.auth import Admin, Agent, AgentOrService, Manager, Supervisor
from shared.deps import ClockDep, ReadSessionDep, RuntimeDep, SessionDep, get_runtime


def get_settings(request: Request) -> CustomerSettings:
    settings = get_runtime(request).settings
    assert isinstance(settings, CustomerSettings)
    return settings


def view_of(request: Request) -> View:
    """The 360 view builder, made once per app (its statement is prepared once)."""
    state = request.app.state
    if getattr(state, "customer_view", None) is None:
        settings = get_settings(request)
        state.customer_view = View(settings, settings.common.currency)
    view: View = state.customer_view
    return view


async def _settings(request: Request) -> CustomerSettings:
    # A coroutine: FastAPI runs a plain function dependency in a worker thread, a hop per request.
    return get_settings(request)


SettingsDep = Annotated[CustomerSettings, Depends(_settings)]

__all__ = [
    "Admin",
    "Agent",
    "AgentOrService",
    "ClockDep",
    "Manager",
    "ReadSessionDep",
    "RuntimeDep",
    "SessionDep",
    "SettingsDep",
    "Supervisor",
    "view_of",
]
