"""Cursor pagination: every list answers a page of items and an opaque cursor for the next one.

The cursor is the sort key of the last item returned (keyset pagination), so a page costs the
same at the millionth row as at the first and inserts never shift what a client sees.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

import orjson
import sqlalchemy as sa
from fastapi import Query
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from shared.problems import Unprocessable

T = TypeVar("T")

# A column to order a page by: a mapped attribute, or a Core table's column.
OrderColumn = InstrumentedAttribute[Any] | sa.Column[Any]

Limit = Annotated[int, Query(ge=1, le=200, description="Items per page.")]
CursorParam = Annotated[str | None, Query(description="The `next_cursor` of the previous page.")]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def encode_cursor(*key: object) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(key, default=str)).decode().rstrip("=")


def decode_cursor(cursor: str, size: int) -> list[object]:
    """The key encoded in ``cursor``; a 422 naming the ``cursor`` parameter if it is not one of ours."""
    try:
        key = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        key = None
    if not isinstance(key, list) or len(key) != size:
        raise _not_ours()
    return key


def _not_ours() -> Unprocessable:
    return Unprocessable("Not a cursor this list gave out.", field="cursor", location="query")


def _key_value(column: OrderColumn, raw: object) -> object:
    """A cursor's part as the column's own type (the cursor is JSON: times, ids travel as text)."""
    column_type = column.type
    # A decorated type (UtcDateTime) says ``object``; what it stores says more.
    if isinstance(column_type, sa.TypeDecorator):
        column_type = column_type.impl_instance
    kind = column_type.python_type
    try:
        if kind is datetime:
            return datetime.fromisoformat(str(raw))
        if kind is uuid.UUID:
            return uuid.UUID(str(raw))
    except ValueError:
        raise _not_ours() from None
    if kind is int and (isinstance(raw, bool) or not isinstance(raw, int)):
        raise _not_ours()
    if kind is str and not isinstance(raw, str):
        raise _not_ours()
    return raw


def _encoded(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


async def keyset_page(
    query: sa.Select[*tuple[Any, ...]],
    *,
    session: AsyncSession,
    order: Sequence[OrderColumn],
    limit: int,
    cursor: str | None,
    descending: bool = False,
    scalars: bool = True,
) -> tuple[list[Any], str | None]:
    """One page of ``query`` by keyset on ``order`` (unique as a whole: end it with the id).

    Answers the page's rows (ORM objects, or ``Row``s with ``scalars=False``) and the cursor of
    the next page, ``None`` on the last one. A cursor this list did not give out is a 422.
    """
    if cursor is not None:
        after = [
            _key_value(column, raw)
            for column, raw in zip(order, decode_cursor(cursor, len(order)), strict=True)
        ]
        # Bound with each column's own type, so a time compares as the column stores it.
        key = sa.tuple_(*order)
        bound = sa.tuple_(
            *(sa.literal(value, type_=column.type) for column, value in zip(order, after, strict=True))
        )
        query = query.where(key < bound if descending else key > bound)
    query = query.order_by(*(column.desc() if descending else column for column in order))
    query = query.limit(limit + 1)
    result = await (session.scalars(query) if scalars else session.execute(query))
    rows = list(result.all())
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], encode_cursor(*(_encoded(getattr(last, column.key)) for column in order))
