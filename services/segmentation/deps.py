"""Dependencies of the segmentation API."""

from __future__ import annotations

from shared.auth import Agent, AgentOrService, Manager, Supervisor
from shared.deps import ClockDep, ReadSessionDep, RuntimeDep, SessionDep

__all__ = [
    "Agent",
    "AgentOrService",
    "ClockDep",
    "Manager",
    "ReadSessionDep",
    "RuntimeDep",
    "SessionDep",
    "Supervisor",
]
