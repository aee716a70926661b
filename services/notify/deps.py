"""Dependencies of the notify API."""

from __future__ import annotations

from shared.auth import Admin, Agent, AgentOrService, Manager
from shared.deps import ClockDep, ReadSessionDep, RuntimeDep, SessionDep

__all__ = [
    "Admin",
    "Agent",
    "AgentOrService",
    "ClockDep",
    "Manager",
    "ReadSessionDep",
    "RuntimeDep",
    "SessionDep",
]
