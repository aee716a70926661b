"""Cursor pagination: every list answers a page of items and an opaque cursor for the next one.

The cursor is the sort key of the last item returned (keyset pagination), so a page costs the
same at the millionth row as at the first and inserts never shift what a client sees.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime
from typing import Annotated, Generic, TypeVar

import orjson
from fastapi import Query
from pydantic import BaseModel

from shared.problems import Unprocessable

T = TypeVar("T")

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
        raise Unprocessable("Not a cursor this list gave out.", field="cursor", location="query")
    return key


def decode_time_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """A (moment, id) key, the cursor of lists ordered by time and id; a 422 as ``decode_cursor``."""
    moment, key = decode_cursor(cursor, 2)
    try:
        return datetime.fromisoformat(str(moment)), uuid.UUID(str(key))
    except ValueError:
        raise Unprocessable("Not a cursor this list gave out.", field="cursor", location="query") from None
