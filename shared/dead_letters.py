"""Dead letters an operator can list, inspect and replay, from the service's own database.

A consumer that gives up on a record (see ``shared.inbox``) keeps it in ``dead_letter`` with the
reason, as well as on its dead-letter topic for other systems: the topic is lost with a broker's
log, the table is not. A replay applies the record through the consumer's own transaction and
inbox, so one that already took effect is not applied again, and a dead letter is replayed once.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import Admin
from shared.messaging import dead_letter
from shared.pagination import CursorParam, Limit, Page, keyset_page
from shared.problems import Conflict, NotFound

if TYPE_CHECKING:
    from shared.inbox import EventConsumer

Headers = Sequence[tuple[str, bytes]]


class DeadLetterNotFound(NotFound):
    slug = "dead-letter-not-found"

    def __init__(self) -> None:
        super().__init__("No such dead letter.")


class DeadLetterAlreadyReplayed(Conflict):
    slug = "dead-letter-already-replayed"

    def __init__(self, replayed_at: datetime) -> None:
        super().__init__(f"This dead letter was replayed at {replayed_at.isoformat()}.")


class DeadLetterStillFails(Conflict):
    slug = "dead-letter-still-fails"

    def __init__(self, reason: str) -> None:
        super().__init__(f"The replay failed again: {reason}")


def headers_to_json(headers: Headers) -> list[list[str]]:
    return [[name, base64.b64encode(value).decode()] for name, value in headers]


def headers_from_json(stored: list[list[str]]) -> list[tuple[str, bytes]]:
    return [(name, base64.b64decode(value)) for name, value in stored]


async def keep(
    *,
    session: AsyncSession,
    consumer: str,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: Headers,
    kind: str,
    reason: str,
    attempts: int,
    now: datetime,
) -> uuid.UUID:
    """Keep one dead letter; returns its id."""
    dead_letter_id = uuid.uuid4()
    await session.execute(
        dead_letter.insert().values(
            id=dead_letter_id,
            consumer=consumer,
            topic=topic,
            partition=partition,
            offset=offset,
            key=key,
            value=value,
            headers=headers_to_json(headers),
            kind=kind,
            reason=reason,
            attempts=attempts,
            created_at=now,
        )
    )
    return dead_letter_id


async def forget(customer_ids: Sequence[uuid.UUID], *, session: AsyncSession) -> int:
    """Erasure: delete the dead letters that name these customers, in their key or anywhere in the record.

    Dead letters are few, and a record that failed may not even have the customer as its key, so
    every one is looked through; returns how many were deleted.
    """
    needles = [str(customer_id).encode() for customer_id in customer_ids]
    rows = (await session.execute(sa.select(dead_letter.c.id, dead_letter.c.key, dead_letter.c.value))).all()
    doomed = [
        row.id
        for row in rows
        if any(needle in (row.key or b"") or needle in (row.value or b"") for needle in needles)
    ]
    if doomed:
        await session.execute(dead_letter.delete().where(dead_letter.c.id.in_(doomed)))
    return len(doomed)


class DeadLetterSummary(BaseModel):
    id: uuid.UUID
    consumer: str
    topic: str
    partition: int
    offset: int
    kind: str
    reason: str
    attempts: int
    created_at: datetime
    replayed_at: datetime | None
    replay_error: str | None


class RecordHeader(BaseModel):
    name: str
    value: str


class DeadLetterRead(DeadLetterSummary):
    """A dead letter with its record: key, value and headers as text (what is not UTF-8 shows as U+FFFD)."""

    key: str | None
    value: str | None
    headers: list[RecordHeader]


class ReplayResult(BaseModel):
    id: uuid.UUID
    outcome: Literal["applied", "already-applied"]


_SUMMARY = [column for column in dead_letter.c if column.key not in ("key", "value", "headers")]


def _text(raw: bytes | None) -> str | None:
    return raw.decode(errors="replace") if raw is not None else None


def dead_letters_router(consumer: EventConsumer) -> APIRouter:
    router = APIRouter(prefix="/dead-letters", tags=["operations"])

    @router.get("", summary="What this service's consumer gave up on, newest first")
    async def list_dead_letters(
        _admin: Admin,
        cursor: CursorParam = None,
        limit: Limit = 50,
        replayed: Annotated[
            bool | None, Query(description="Only replayed (true) or waiting (false) ones.")
        ] = None,
    ) -> Page[DeadLetterSummary]:
        query = sa.select(*_SUMMARY)
        if replayed is not None:
            query = query.where(
                dead_letter.c.replayed_at.is_not(None) if replayed else dead_letter.c.replayed_at.is_(None)
            )
        async with consumer.db.read() as session:
            rows, next_cursor = await keyset_page(
                query,
                session=session,
                order=[dead_letter.c.created_at, dead_letter.c.id],
                limit=limit,
                cursor=cursor,
                descending=True,
                scalars=False,
            )
        return Page[DeadLetterSummary](
            items=[DeadLetterSummary.model_validate(row, from_attributes=True) for row in rows],
            next_cursor=next_cursor,
        )

    @router.get("/{dead_letter_id}", summary="One dead letter, with its record")
    async def read_dead_letter(dead_letter_id: uuid.UUID, _admin: Admin) -> DeadLetterRead:
        async with consumer.db.read() as session:
            row = (
                await session.execute(sa.select(dead_letter).where(dead_letter.c.id == dead_letter_id))
            ).first()
        if row is None:
            raise DeadLetterNotFound()
        return DeadLetterRead(
            **{column.key: getattr(row, column.key) for column in _SUMMARY},
            key=_text(row.key),
            value=_text(row.value),
            headers=[
                RecordHeader(name=name, value=value.decode(errors="replace"))
                for name, value in headers_from_json(row.headers)
            ],
        )

    @router.post(
        "/{dead_letter_id}/replay",
        summary="Apply a dead letter again, once; a 409 says why if it still fails",
    )
    async def replay_dead_letter(dead_letter_id: uuid.UUID, _admin: Admin) -> ReplayResult:
        outcome = await consumer.replay(dead_letter_id)
        return ReplayResult(id=dead_letter_id, outcome=outcome)

    return router
