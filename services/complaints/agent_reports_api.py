"""HTTP routes of the reports per agent and per team: JSON, and CSV for a spreadsheet."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel

from services.complaints import agent_reports
from services.complaints.api import FiltersDep
from services.complaints.deps import ClockDep, ReadSessionDep, Supervisor
from services.complaints.management_api import report_window
from services.complaints.reports import Window
from shared.clock import UtcDatetime

router = APIRouter(prefix="/complaints-reports", tags=["management"])

_CSV: dict[int | str, dict[str, Any]] = {200: {"content": {"text/csv": {}}}}


class Figures(BaseModel):
    """Empty (null) where there is nothing to compute from: no promise decided, no survey answered."""

    complaints: int
    sla_kept: int
    sla_decided: int
    sla_attainment: float | None
    first_response_count: int
    first_response_median_hours: float | None
    first_response_p90_hours: float | None
    resolution_count: int
    resolution_median_hours: float | None
    resolution_p90_hours: float | None
    first_contact_resolution_rate: float | None
    csat_answers: int
    csat_mean: float | None
    backlog: int


class AgentFigures(Figures):
    agent: str
    name: str | None


class TeamFigures(Figures):
    team: str
    name: str | None
    members: int


class AgentReport(BaseModel):
    since: datetime
    until: datetime
    agents: list[AgentFigures]


class TeamReport(BaseModel):
    since: datetime
    until: datetime
    teams: list[TeamFigures]


@dataclass(frozen=True)
class Period:
    window: Window


async def period(
    clock: ClockDep, since: UtcDatetime | None = None, until: UtcDatetime | None = None
) -> Period:
    """The report's window (a coroutine, so that FastAPI does not run it in a worker thread)."""
    return Period(report_window(clock, since, until))


PeriodDep = Annotated[Period, Depends(period)]


def _csv(rows: list[dict[str, object]], columns: tuple[str, ...], name: str) -> Response:
    return Response(
        agent_reports.to_csv(rows, columns),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


@router.get("/agents", summary="SLA attainment, times, FCR, CSAT and backlog per agent")
async def per_agent(
    period: PeriodDep, _user: Supervisor, filters: FiltersDep, *, session: ReadSessionDep
) -> AgentReport:
    rows = await agent_reports.per_agent(session=session, window=period.window, where=filters.where)
    return AgentReport.model_validate(
        {"since": period.window.since, "until": period.window.until, "agents": rows}
    )


@router.get("/agents.csv", summary="The report per agent as CSV", response_class=Response, responses=_CSV)
async def per_agent_csv(
    period: PeriodDep, _user: Supervisor, filters: FiltersDep, *, session: ReadSessionDep
) -> Response:
    rows = await agent_reports.per_agent(session=session, window=period.window, where=filters.where)
    return _csv(rows, agent_reports.AGENT_COLUMNS, "complaints-per-agent")


@router.get("/teams", summary="SLA attainment, times, FCR, CSAT and backlog per team")
async def per_team(
    period: PeriodDep, _user: Supervisor, filters: FiltersDep, *, session: ReadSessionDep
) -> TeamReport:
    rows = await agent_reports.per_team(session=session, window=period.window, where=filters.where)
    return TeamReport.model_validate(
        {"since": period.window.since, "until": period.window.until, "teams": rows}
    )


@router.get("/teams.csv", summary="The report per team as CSV", response_class=Response, responses=_CSV)
async def per_team_csv(
    period: PeriodDep, _user: Supervisor, filters: FiltersDep, *, session: ReadSessionDep
) -> Response:
    rows = await agent_reports.per_team(session=session, window=period.window, where=filters.where)
    return _csv(rows, agent_reports.TEAM_COLUMNS, "complaints-per-team")
