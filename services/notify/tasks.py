"""Staff tasks: a playbook creates them; people list, claim and complete them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.notify.errors import NotYourTask, TaskClaimed, TaskDone, TaskNotFound
from services.notify.models import Task
from shared.auth import Principal
from shared.pagination import keyset_page
from shared.roles import STAFF_RANK, Role


@dataclass(frozen=True)
class TaskFilter:
    assignee: str | None = None
    assignee_role: str | None = None
    customer_id: uuid.UUID | None = None
    status: str | None = None
    due_before: datetime | None = None
    due_after: datetime | None = None


async def list_tasks(
    *, session: AsyncSession, where: TaskFilter, limit: int, cursor: str | None
) -> tuple[list[Task], str | None]:
    """Soonest due first."""
    query = sa.select(Task)
    if where.assignee is not None:
        query = query.where(Task.assignee == where.assignee)
    if where.assignee_role is not None:
        query = query.where(Task.assignee_role == where.assignee_role)
    if where.customer_id is not None:
        query = query.where(Task.customer_id == where.customer_id)
    if where.status is not None:
        query = query.where(Task.status == where.status)
    if where.due_before is not None:
        query = query.where(Task.due_at < where.due_before)
    if where.due_after is not None:
        query = query.where(Task.due_at >= where.due_after)
    return await keyset_page(query, session=session, order=[Task.due_at, Task.id], limit=limit, cursor=cursor)


async def get(*, session: AsyncSession, task_id: uuid.UUID, for_update: bool = False) -> Task:
    task = await session.get(Task, task_id, with_for_update=for_update)
    if task is None:
        raise TaskNotFound()
    return task


def _may_take(task: Task, who: Principal) -> bool:
    """The named assignee, anyone of the task's role or above if none is named, and supervisors always."""
    if who.at_least(Role.supervisor):
        return True
    if task.assignee is not None:
        return task.assignee == who.subject
    return STAFF_RANK.get(who.role, 0) >= STAFF_RANK.get(Role(task.assignee_role), 0)


async def claim(*, session: AsyncSession, task_id: uuid.UUID, who: Principal, now: datetime) -> Task:
    task = await get(session=session, task_id=task_id, for_update=True)
    if task.status == "done":
        raise TaskDone()
    if task.status == "claimed":
        if task.claimed_by == who.subject:
            return task
        raise TaskClaimed(task.claimed_by)
    if not _may_take(task, who):
        raise NotYourTask()
    task.status, task.claimed_by, task.claimed_at = "claimed", who.subject, now
    return task


async def complete(
    *, session: AsyncSession, task_id: uuid.UUID, who: Principal, outcome: str, now: datetime
) -> Task:
    task = await get(session=session, task_id=task_id, for_update=True)
    if task.status == "done":
        raise TaskDone()
    if task.status == "claimed" and task.claimed_by != who.subject and not who.at_least(Role.supervisor):
        raise TaskClaimed(task.claimed_by)
    if task.status == "open":
        if not _may_take(task, who):
            raise NotYourTask()
        task.claimed_by, task.claimed_at = who.subject, now
    task.status, task.completed_by, task.completed_at, task.outcome = "done", who.subject, now, outcome
    return task
