"""``Idempotency-Key`` for POSTs that apps retry (IETF draft-ietf-httpapi-idempotency-key-header).

The first request with a key reserves it, in the same transaction as the resource it creates,
together with a fingerprint of the request. A repeat with the same key and the same request
gets that resource back instead of a second one; the same key with a different request is a
422. Only the resource's id is kept, never the response, so erasing a person's data leaves
nothing behind here. A service adds the table to its own metadata with ``idempotency_table``.
"""

from __future__ import annotations

import functools
import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

import orjson
import sqlalchemy as sa
from fastapi import Header
from sqlalchemy import Row
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import UtcDateTime, affected_rows
from shared.problems import Conflict, Unprocessable

HEADER = "Idempotency-Key"

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias=HEADER,
        min_length=1,
        max_length=255,
        description="Makes a retry safe: a repeat with the same key returns what the first request created.",
    ),
]


def idempotency_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "idempotency_key",
        metadata,
        # Who used the key for what (caller and operation): keys of different callers never collide.
        sa.Column("scope", sa.String(300), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("resource_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Index("ix_idempotency_key_created_at", "created_at"),
        sa.Index("ix_idempotency_key_resource_id", "resource_id"),
    )


def fingerprint(request: Any) -> str:
    """A digest of a request's content, independent of key order."""
    return hashlib.sha256(orjson.dumps(request, option=orjson.OPT_SORT_KEYS, default=str)).hexdigest()


@dataclass(frozen=True)
class Claim:
    """What claiming a key found: the resource an identical earlier request created (None: this
    request holds the key and goes on), and what the caller asked to read alongside, if it holds it."""

    earlier: uuid.UUID | None
    also: Row[Any] | None = None


async def claim(
    table: sa.Table,
    *,
    session: AsyncSession,
    scope: str,
    key: str,
    request_fingerprint: str,
    resource_id: uuid.UUID,
    now: datetime,
    ttl: timedelta,
    also: tuple[sa.ColumnElement[Any], ...] = (),
    also_params: Mapping[str, Any] | None = None,
) -> Claim:
    """Reserve ``key`` for a request that will create ``resource_id``.

    ``earlier`` is None if this is the first request with the key (the caller goes on to create
    the resource), or the id of the resource that an identical earlier request created.

    A first request costs one statement: the key is inserted, or an expired one with the same
    key replaced, and the row comes back only if this request now holds the key. A concurrent
    request with the same key waits (PostgreSQL) or is serialised (SQLite) until the first one
    ends, then finds its row; no savepoint is needed, since the insert never fails on the key.
    ``also`` are expressions (scalar subqueries, with ``also_params`` bound) that the same
    statement returns when the request holds the key: what the caller would read next anyway.
    """
    claimed = _claim_statement(session.get_bind().dialect.name, table, also)
    row = {
        **(also_params or {}),
        "scope": scope,
        "key": key,
        "fingerprint": request_fingerprint,
        "resource_id": resource_id,
        "created_at": now,
        "expired_before": now - ttl,
    }
    held = (await session.execute(claimed, row)).first()
    if held is not None:
        return Claim(earlier=None, also=held)
    where = sa.and_(table.c.scope == scope, table.c.key == key)
    earlier = (
        await session.execute(sa.select(table.c.fingerprint, table.c.resource_id).where(where))
    ).first()
    if earlier is None:
        # Purged between the two statements: rare enough that the client may simply retry.
        raise Conflict("A request with this Idempotency-Key is in progress; retry it.")
    if earlier.fingerprint != request_fingerprint:
        raise Unprocessable(
            "This Idempotency-Key was already used for a different request.", field=HEADER, location="header"
        )
    return Claim(earlier=uuid.UUID(str(earlier.resource_id)))


@functools.cache
def _claim_statement(dialect: str, table: sa.Table, also: tuple[sa.ColumnElement[Any], ...]) -> sa.Insert:
    """Insert a key, or take over an expired one, returning the row only if this request holds it.

    Built once per table (and caller's ``also``): it is the same statement for every request,
    bound to each one's values.
    """
    insert = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    return insert.on_conflict_do_update(
        index_elements=[table.c.scope, table.c.key],
        set_={
            "fingerprint": insert.excluded.fingerprint,
            "resource_id": insert.excluded.resource_id,
            "created_at": insert.excluded.created_at,
        },
        where=table.c.created_at < sa.bindparam("expired_before"),
    ).returning(table.c.resource_id, *also)


async def purge(table: sa.Table, *, session: AsyncSession, before: datetime) -> int:
    """Forget keys older than ``before``; returns how many."""
    result = await session.execute(table.delete().where(table.c.created_at < before))
    return affected_rows(result)


async def forget(table: sa.Table, *, session: AsyncSession, resource_ids: list[uuid.UUID]) -> None:
    """Forget the keys that created these resources (when a person's data is erased)."""
    if resource_ids:
        await session.execute(table.delete().where(table.c.resource_id.in_(resource_ids)))
