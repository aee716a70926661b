"""The fast decoder takes exactly what the contract (the Pydantic envelope and payload models) takes.

``decode`` reads the envelope's attributes with msgspec and leaves to the Pydantic ``_Received``
model whatever that refuses; the payload is always the contract's Pydantic model. So the decoder
must accept, refuse and produce exactly what the Pydantic path alone does, for every event type:
checked here on every type's example, changed at random (Hypothesis) and in known bad ways.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from shared.events import REGISTRY, Envelope, Event, InvalidEvent, decode, encode, envelope_for
from shared.events.base import decode_by_model, encode_by_model, holds_models, ordered_uuid
from tests.shared.event_examples import example

TYPES = sorted(REGISTRY)
ATTRIBUTES = [
    "specversion",
    "id",
    "source",
    "type",
    "subject",
    "time",
    "datacontenttype",
    "partitionkey",
    "causationid",
    "traceparent",
    "tracestate",
    "data",
    "unknownextension",
]
CUSTOMER = uuid.UUID("0132405d-cf0c-4ada-bc09-490c7599e1da")

# Values of the forms that tell decoders apart: UUIDs and times written every way, and the wrong kinds.
UUIDS = [
    str(CUSTOMER),
    str(CUSTOMER).upper(),
    CUSTOMER.hex,
    "{" + str(CUSTOMER) + "}",
    "urn:uuid:" + str(CUSTOMER),
    str(CUSTOMER)[:-1],
    str(CUSTOMER).replace("-", "", 1),
]
TIMES = [
    "2026-12-04T11:18:52.336632Z",
    "2026-12-04T11:18:52Z",
    "2026-12-04t11:18:52z",
    "2026-12-04 11:18:52Z",
    "2026-12-04T11:18:52.1234567Z",
    "2026-12-04T11:18:52.1234565Z",
    "2026-12-04T11:18:52+08:00",
    "2026-12-04T11:18:52-00:00",
    "2026-12-04T11:18:52+0800",
    "2026-12-04T11:18:52+24:00",
    "2026-12-04T11:18:52+23:59",
    "2026-12-04T11:18:52.5+08:00",
    "2026-12-04T11:18Z",
    "2026-12-04T11:18:52",
    "2026-12-04T23:59:60Z",
    "2026-02-30T11:18:52Z",
    "2026-12-04T11:18:52,5Z",
    "2026-12-04T25:18:52Z",
    "2026-12-04",
    "1764847132",
    "",
]
TRACEPARENTS = [
    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
    "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
    "garbage",
]
JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(UUIDS + TIMES + TRACEPARENTS + ["1.0", "1.1", "csm.purchase.recorded.v1", "a" * 600]),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=10), inner, max_size=3)
    ),
    max_leaves=6,
)
ABSENT = object()


def outcome(decoder: Callable[..., Envelope[Event]], raw: bytes, key: bytes | None) -> tuple[str, Any]:
    try:
        envelope = decoder(raw, REGISTRY, key=key)
    except InvalidEvent as error:
        return ("refused", str(error))
    return ("accepted", described(envelope))


def described(envelope: Envelope[Event]) -> dict[str, Any]:
    """Everything an envelope holds, the time's offset included; a time the decoder made up
    (none was given) is left out, as it is the moment of decoding."""
    fields = {name: getattr(envelope, name) for name in Envelope.model_fields}
    fields["data"] = (type(envelope.data), envelope.data.model_dump())
    fields["time"] = (envelope.time, envelope.time.utcoffset())
    fields["wire"] = encode(envelope)
    return fields


def both(raw: bytes, key: bytes | None = None) -> None:
    fast = outcome(decode, raw, key)
    reference = outcome(decode_by_model, raw, key)
    if fast[0] == reference[0] == "accepted" and orjson.loads(raw).get("time") is None:
        for side in (fast, reference):
            side[1].pop("time")
            side[1].pop("wire")
    assert fast == reference


def wire_example(event_type: str) -> dict[str, Any]:
    envelope = envelope_for(example(event_type, CUSTOMER), source="/tests")
    parsed: dict[str, Any] = orjson.loads(encode(envelope))
    return parsed


@pytest.mark.parametrize("event_type", TYPES)
def test_every_types_example_decodes_alike(event_type: str) -> None:
    document = wire_example(event_type)
    both(orjson.dumps(document))
    both(orjson.dumps(document), key=str(CUSTOMER).encode())


@pytest.mark.parametrize("event_type", TYPES)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    changes=st.lists(
        st.tuples(st.sampled_from(ATTRIBUTES), st.one_of(st.just(ABSENT), JSON_VALUES)),
        min_size=1,
        max_size=3,
    ),
    field_changes=st.lists(st.tuples(st.text(max_size=12), JSON_VALUES), max_size=2),
    use_key=st.booleans(),
)
def test_any_change_to_an_envelope_is_accepted_or_refused_alike(
    event_type: str,
    changes: list[tuple[str, Any]],
    field_changes: list[tuple[str, Any]],
    use_key: bool,
) -> None:
    document = wire_example(event_type)
    for name, value in changes:
        if value is ABSENT:
            document.pop(name, None)
        else:
            document[name] = value
    if isinstance(document.get("data"), dict):
        fields = sorted(document["data"]) or [""]
        for index, (name, value) in enumerate(field_changes):
            # Change a field the payload has (as often as not), or add one it does not know.
            document["data"][fields[index % len(fields)] if len(name) % 2 else name] = value
    both(orjson.dumps(document), key=str(CUSTOMER).encode() if use_key else None)


@pytest.mark.parametrize("event_type", TYPES)
@pytest.mark.parametrize("name", ["time", "causationid", "id", "subject", "traceparent"])
def test_every_known_spelling_of_times_ids_and_trace_contexts_decodes_alike(
    event_type: str, name: str
) -> None:
    values: list[Any] = [*UUIDS, *TIMES, *TRACEPARENTS, None, 1764847132, 1.5, True, [], {}]
    for value in values:
        document = wire_example(event_type)
        document[name] = value
        both(orjson.dumps(document))


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"null",
        b"[]",
        b"{}",
        b"not json",
        b'{"specversion":"1.0"}',
        b"\xff\xfe",
        b'{"specversion":"1.0","id":"x","source":"/s","type":"csm.purchase.recorded.v1","data":[]}',
        b'{"specversion":"1.0","id":"","source":"/s","type":"csm.purchase.recorded.v1","data":{}}',
        b'{"specversion":"1.0","id":"x","source":"","type":"csm.purchase.recorded.v1","data":{}}',
        b'{"specversion":"1.0","id":"x","source":"/s","type":"no.such.type","data":{}}',
        b'{"specversion":1.0,"id":"x","source":"/s","type":"csm.purchase.recorded.v1","data":{}}',
        b'{"specversion":"1.0","id":1,"source":"/s","type":"csm.purchase.recorded.v1","data":{}}',
    ],
)
def test_known_bad_records_are_refused_alike(raw: bytes) -> None:
    both(raw)
    both(raw, key=str(CUSTOMER).encode())


OFFSETS = st.sampled_from(
    [UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5, minutes=-30)), None]
)


@pytest.mark.parametrize("event_type", TYPES)
@settings(max_examples=40, deadline=None)
@given(
    source=st.one_of(st.text(max_size=30), st.sampled_from(["/csm/segmentation", ""])),
    moment=st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9998, 1, 1)),
    offset=OFFSETS,
    traceparent=st.one_of(st.none(), st.sampled_from(TRACEPARENTS), st.text(max_size=60)),
    tracestate=st.one_of(st.none(), st.text(max_size=20), st.just("k=" + "v" * 600)),
    cause=st.one_of(st.none(), st.uuids()),
)
def test_envelopes_are_made_and_written_as_the_model_makes_and_writes_them(
    event_type: str,
    source: str,
    moment: datetime,
    offset: timezone | None,
    traceparent: str | None,
    tracestate: str | None,
    cause: uuid.UUID | None,
) -> None:
    event = example(event_type, CUSTOMER)
    event_id = uuid.uuid4()
    time = moment.replace(tzinfo=offset)
    values: dict[str, Any] = dict(
        source=source,
        time=time,
        cause=cause,
        event_id=event_id,
        traceparent=traceparent,
        tracestate=tracestate,
    )
    try:
        fast: Any = envelope_for(event, **values)
    except ValidationError as error:
        fast = ("refused", str(error))
    try:
        reference: Any = Envelope[Event](
            id=event_id,
            source=source,
            type=event.type,
            subject=str(CUSTOMER),
            time=time,
            partitionkey=str(CUSTOMER),
            causationid=cause,
            traceparent=traceparent,
            tracestate=tracestate,
            data=event,
        )
    except ValidationError as error:
        reference = ("refused", str(error))
    assert fast == reference
    if isinstance(fast, Envelope):
        assert fast.model_fields_set == reference.model_fields_set
        assert encode(fast) == encode_by_model(reference)
        assert encode(fast) == encode_by_model(fast)
        both(encode(fast))


class DriverUuid(uuid.UUID):
    """A UUID of a subclass, as asyncpg returns them from PostgreSQL."""


@pytest.mark.parametrize("event_type", TYPES)
def test_ids_of_a_drivers_uuid_type_are_written_as_the_model_writes_them(event_type: str) -> None:
    cause, event_id = DriverUuid(int=uuid.uuid4().int), DriverUuid(int=uuid.uuid4().int)
    envelope = envelope_for(example(event_type, CUSTOMER), source="/tests", cause=cause, event_id=event_id)
    assert encode(envelope) == encode_by_model(envelope)
    assert decode(encode(envelope), REGISTRY).causationid == cause


def test_ids_are_time_ordered_unique_version_7_uuids() -> None:
    ids = [ordered_uuid() for _ in range(50_000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert {(i.version, i.variant) for i in ids} == {(7, uuid.RFC_4122)}
    assert all(type(i) is uuid.UUID for i in ids[:10])
    assert envelope_for(example(TYPES[0]), source="/tests").id.version == 7


class _Inner(BaseModel):
    name: str


class _Outer(BaseModel):
    inner: _Inner | None = None


def test_a_payload_is_written_as_any_only_where_a_field_may_hold_a_model() -> None:
    class Plain(BaseModel):
        customer_id: uuid.UUID
        amounts: list[Decimal]
        when: datetime | None = None

    class Nested(BaseModel):
        items: list[_Outer]

    class Loose(BaseModel):
        extra: dict[str, Any]

    assert not holds_models(Plain)
    assert holds_models(_Outer)
    assert holds_models(Nested)
    assert holds_models(Loose)
    # Where a model of a subclass is held, written as any it keeps the subclass's fields (as the
    # envelope model writes it); every type's example is held to that by the tests above.
    registered = REGISTRY["csm.customer.registered.v1"]
    assert holds_models(registered)
