"""Dependency aliases every service's ``deps.py`` builds on.

Every dependency here is a coroutine, though none of them waits for anything: FastAPI runs a plain
function dependency in a worker thread, a hop per request (and per dependency) that costs more than
the dependency itself and hands the GIL back and forth with the database driver's thread.
"""

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


async def _runtime(request: Request) -> Runtime:
    return get_runtime(request)


async def _unit_of_work(request: Request) -> AsyncIterator[AsyncSession]:
    async with get_runtime(request).db.unit_of_work() as session:
        yield session


async def _read_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with get_runtime(request).db.read() as session:
        yield session


async def get_clock(request: Request) -> Clock:
    return get_runtime(request).clock


RuntimeDep = Annotated[Runtime, Depends(_runtime)]
# scope="function": the commit happens when the endpoint returns, before the response is sent,
# so a client never sees success for work that then failed to commit.
SessionDep = Annotated[AsyncSession, Depends(_unit_of_work, scope="function")]
ReadSessionDep = Annotated[AsyncSession, Depends(_read_session, scope="function")]
ClockDep = Annotated[Clock, Depends(get_clock)]
