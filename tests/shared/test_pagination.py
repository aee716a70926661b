"""Cursors: what a list gives out it takes back; anything else is a 422 naming the cursor."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from shared.pagination import decode_time_cursor, encode_cursor
from shared.problems import Unprocessable


def test_a_time_and_id_cursor_reads_back_as_given() -> None:
    moment, key = datetime(2026, 11, 23, 9, 30, 15, 123456, tzinfo=UTC), uuid.uuid4()
    assert decode_time_cursor(encode_cursor(moment.isoformat(), str(key))) == (moment, key)


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        encode_cursor("yesterday", str(uuid.uuid4())),
        encode_cursor(datetime.now(UTC).isoformat(), "not-an-id"),
        encode_cursor(datetime.now(UTC).isoformat()),
    ],
)
def test_anything_else_is_a_422_naming_the_cursor(cursor: str) -> None:
    with pytest.raises(Unprocessable) as refused:
        decode_time_cursor(cursor)
    assert refused.value.extensions["errors"][0]["field"] == "cursor"
    assert refused.value.extensions["errors"][0]["location"] == "query"
