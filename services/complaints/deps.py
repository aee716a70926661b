"""Dependencies of the complaints API."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.complaints.service import Actor
from services.complaints.settings import ComplaintsSettings
from shared.auth import Agent, AgentOrService, Manager, Principal, Supervisor
from shared.deps import ClockDep, ReadSessionDep, RuntimeDep, SessionDep, get_runtime
from shared.roles import Role


# Coroutines, not plain functions: FastAPI runs a plain dependency in a worker thread, a hop per
# request that costs more than the dependency itself.
async def get_settings(request: Request) -> ComplaintsSettings:
    # The request, not RuntimeDep: each dependency is a node FastAPI solves on every request.
    settings = get_runtime(request).settings
    assert isinstance(settings, ComplaintsSettings)
    return settings


async def get_currency(settings: Annotated[ComplaintsSettings, Depends(get_settings)]) -> str:
    return settings.common.currency


def actor_of(principal: Principal) -> Actor:
    return Actor(subject=principal.subject, staff=principal.role is not Role.service)


SettingsDep = Annotated[ComplaintsSettings, Depends(get_settings)]
# The company's currency: the built-in policy's, until an operator stores a policy of their own.
CurrencyDep = Annotated[str, Depends(get_currency)]

__all__ = [
    "Agent",
    "AgentOrService",
    "ClockDep",
    "CurrencyDep",
    "Manager",
    "ReadSessionDep",
    "RuntimeDep",
    "SessionDep",
    "SettingsDep",
    "Supervisor",
    "actor_of",
]
