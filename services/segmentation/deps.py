"""Dependencies of the segmentation API."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import Depends, Query

from services.segmentation.errors import AnalysisDateInFuture
from services.segmentation.settings import SegmentationSettings
from shared.auth import Agent, AgentOrService, Manager, Supervisor
from shared.clock import UtcDatetime
from shared.deps import ClockDep, ReadSessionDep, RuntimeDep, SessionDep

__all__ = [
    "Agent",
    "AgentOrService",
    "AnalysisDate",
    "ClockDep",
    "Manager",
    "ReadSessionDep",
    "RuntimeDep",
    "SessionDep",
    "Supervisor",
]


async def analysis_date(
    clock: ClockDep,
    runtime: RuntimeDep,
    as_of: Annotated[
        UtcDatetime | None,
        Query(
            description="The analysis date: figure everything as of this moment (ISO 8601 with its "
            "offset). If not given, the pinned analysis date, else now. Not in the future."
        ),
    ] = None,
) -> datetime | None:
    """The moment asked for, refused if it lies in the future beyond the clock skew (a coroutine,
    so that FastAPI does not run it in a worker thread)."""
    if as_of is None:
        return None
    now = clock.now()
    settings = runtime.settings
    assert isinstance(settings, SegmentationSettings)
    if as_of > now + timedelta(seconds=settings.clock_skew_seconds):
        raise AnalysisDateInFuture(as_of, now, settings.clock_skew_seconds)
    return as_of


# The ``as_of`` query parameter, checked: None when not given.
AnalysisDate = Annotated[datetime | None, Depends(analysis_date)]
