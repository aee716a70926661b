"""Dependency aliases every service's ``deps.py`` builds on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from shared.clock import Clock
from shared.service import Runtime


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def _unit_of_work(request: Request) -> AsyncIterator[AsyncSession]:
    async with get_runtime(request).db.unit_of_work() as session:
        yield session


async def _read_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with get_runtime(request).db.read() as session:
        yield session


def get_clock(request: Request) -> Clock:
    return get_runtime(request).clock


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
# scope="function": the commit happens when the endpoint returns, before the response is sent,
# so a client never sees success for work that then failed to commit.
SessionDep = Annotated[AsyncSession, Depends(_unit_of_work, scope="function")]
ReadSessionDep = Annotated[AsyncSession, Depends(_read_session, scope="function")]
ClockDep = Annotated[Clock, Depends(get_clock)]
