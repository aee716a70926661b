"""Dependencies of the customer API."""

from __future__ import annotations

from shared.auth import Admin, Agent, AgentOrService
from shared.deps import ClockDep, ReadSessionDep, RuntimeDep, SessionDep

__all__ = ["Admin", "Agent", "AgentOrService", "ClockDep", "ReadSessionDep", "RuntimeDep", "SessionDep"]
