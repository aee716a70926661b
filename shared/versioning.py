"""Versioned documents (policies, playbooks, cut points): each save adds the next version.

Versions never change once written. Two saves at once would both pick the same next number; the
unique key refuses the second, which is told to read the new version and try again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from shared.problems import Conflict

Row = TypeVar("Row")


class ConcurrentVersion(Conflict):
    title, slug = "Changed meanwhile", "concurrent-version"

    def __init__(self) -> None:
        super().__init__("Another version was stored at the same time; read it and try again.")


async def latest_version(
    *, session: AsyncSession, version: InstrumentedAttribute[int], where: tuple[Any, ...] = ()
) -> int:
    """The highest stored version (0 when none is: version 0 is the shipped default)."""
    return int(await session.scalar(sa.select(sa.func.max(version)).where(*where)) or 0)


async def add_next_version(
    make_row: Callable[[int], Row],
    *,
    session: AsyncSession,
    version: InstrumentedAttribute[int],
    where: tuple[Any, ...] = (),
) -> Row:
    """Stores ``make_row(next version)``; a concurrent save of the same version is a 409."""
    row = make_row(await latest_version(session=session, version=version, where=where) + 1)
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
    except IntegrityError:
        raise ConcurrentVersion() from None
    return row
