"""The CloudEvents 1.0 envelope and the base of every event payload.

Events travel in the CloudEvents Kafka protocol binding, structured mode: the record value is
the whole envelope as JSON (``content-type: application/cloudevents+json``) and the record key
is the customer id, so that one customer's events keep their order within a partition.

What csm receives may come from other systems in either mode of the binding: structured, or
binary (the attributes in ``ce_*`` headers, the record value the data). Their envelopes need not
carry csm's extensions: the customer comes from the payload, or else from the record key; an id
that is not a UUID is made one from the source and the id, which CloudEvents keeps unique together.
"""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from time import time_ns
from typing import Annotated, Any, ClassVar, Generic, Literal, TypeVar, get_args

import msgspec
import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
# version-traceid-parentid-flags (W3C Trace Context); later versions may append fields.
_TRACEPARENT = r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}(-.*)?$"


class Event(BaseModel):
    """The payload of one versioned event type; every event is about one customer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: ClassVar[str]
    topic: ClassVar[str]
    # Fields (dotted paths into the payload) that name or describe the person: they travel sealed
    # with the customer's key and are unreadable once the customer is erased (shared.sealing).
    personal: ClassVar[tuple[str, ...]] = ()

    customer_id: uuid.UUID


E = TypeVar("E")


class Envelope(BaseModel, Generic[E]):
    """A CloudEvents 1.0 envelope with the csm extensions ``partitionkey`` and ``causationid``, and
    the distributed-tracing extension (``traceparent``, ``tracestate``) when tracing is on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    specversion: Literal["1.0"] = "1.0"
    id: uuid.UUID
    source: str = Field(min_length=1)
    type: str = Field(min_length=1)
    subject: str = Field(min_length=1)
    time: AwareDatetime
    datacontenttype: Literal["application/json"] = "application/json"
    partitionkey: str = Field(min_length=1)
    causationid: uuid.UUID | None = None
    # W3C Trace Context of the span that staged the event (shared.tracing); absent when not traced.
    traceparent: str | None = Field(default=None, pattern=_TRACEPARENT)
    tracestate: str | None = Field(default=None, max_length=512)
    data: E


# Parametrising a generic model is a lookup that costs more than building the envelope: do it once.
_EVENT_ENVELOPE = Envelope[Event]


class InvalidEvent(ValueError):
    """A record that is not a valid csm event; the reason says why, without its content."""


def envelope_for(
    event: Event,
    *,
    source: str,
    cause: uuid.UUID | None = None,
    time: datetime | None = None,
    event_id: uuid.UUID | None = None,
    traceparent: str | None = None,
    tracestate: str | None = None,
) -> Envelope[Event]:
    """The envelope of an event csm stages; its id is time-ordered (UUID version 7), so that the
    outbox and the inboxes that record it append to their indexes."""
    subject = str(event.customer_id)
    values = {
        "id": event_id or ordered_uuid(),
        "source": source,
        "type": event.type,
        "subject": subject,
        "time": time or datetime.now(UTC),
        "partitionkey": subject,
        "causationid": cause,
        "traceparent": traceparent,
        "tracestate": tracestate,
        "data": event,
    }
    if _plainly_valid(event, source, values["time"], cause, event_id, traceparent, tracestate):
        # In the fields' order: the model writes its fields in the order its __dict__ holds them.
        return constructed(
            _fields_set=_MADE_FIELDS,
            specversion="1.0",
            id=values["id"],
            source=source,
            type=event.type,
            subject=subject,
            time=values["time"],
            datacontenttype="application/json",
            partitionkey=subject,
            causationid=cause,
            traceparent=traceparent,
            tracestate=tracestate,
            data=event,
        )
    # Anything out of the ordinary is the model's to judge (and to refuse, as it always did).
    return _EVENT_ENVELOPE(**values)


class _Uuid7:
    """UUIDs version 7 (RFC 9562): 48 bits of Unix milliseconds, then 74 random bits; each one
    greater than the one before in this process, even within one millisecond or if the clock
    steps back (then it counts on from the last)."""

    _VERSION_AND_VARIANT = (7 << 76) | (2 << 62)
    _RANDOM = ((1 << 12) - 1) << 64 | ((1 << 62) - 1)

    def __init__(self) -> None:
        self.last = 0

    def __call__(self) -> uuid.UUID:
        value = (
            (time_ns() // 1_000_000) << 80
            | self._VERSION_AND_VARIANT
            | (random.getrandbits(128) & self._RANDOM)
        )
        if value <= self.last:
            value = self.last + 1
        self.last = value
        return uuid.UUID(int=value)


ordered_uuid = _Uuid7()


_TRACEPARENT_WRITTEN = re.compile(r"[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")


def _plainly_valid(
    event: object,
    source: object,
    time: object,
    cause: object,
    event_id: object,
    traceparent: object,
    tracestate: object,
) -> bool:
    """True if the envelope model would take these values as they are (a subset of what it takes)."""
    return bool(
        isinstance(event, Event)
        and type(source) is str
        and source != ""
        and type(time) is datetime
        and time.utcoffset() is not None
        and (cause is None or type(cause) is uuid.UUID)
        and (event_id is None or type(event_id) is uuid.UUID)
        and (
            traceparent is None or (type(traceparent) is str and _TRACEPARENT_WRITTEN.fullmatch(traceparent))
        )
        and (tracestate is None or (type(tracestate) is str and len(tracestate) <= 512))
    )


# An event outside any trace is written without the tracing attributes, as it was before them.
_UNTRACED = frozenset({"traceparent", "tracestate"})
_NO_TRACESTATE = frozenset({"tracestate"})


def encode(envelope: Envelope[Any]) -> bytes:
    """The envelope as JSON, byte for byte what ``model_dump_json`` writes, without its cost: the
    attributes by orjson, the payload by its own model's serializer."""
    time = envelope.time
    if time.tzinfo is UTC and type(envelope.data).__pydantic_serializer__ is not None:
        head: dict[str, Any] = {
            "specversion": envelope.specversion,
            "id": envelope.id,
            "source": envelope.source,
            "type": envelope.type,
            "subject": envelope.subject,
            "time": time,
            "datacontenttype": envelope.datacontenttype,
            "partitionkey": envelope.partitionkey,
            "causationid": envelope.causationid,
        }
        if envelope.traceparent is not None:
            head["traceparent"] = envelope.traceparent
            if envelope.tracestate is not None:
                head["tracestate"] = envelope.tracestate
        payload = type(envelope.data)
        as_any = _AS_ANY.get(payload)
        if as_any is None:
            as_any = _AS_ANY[payload] = holds_models(payload)
        data: bytes = payload.__pydantic_serializer__.to_json(envelope.data, serialize_as_any=as_any)
        return orjson.dumps(head, default=_as_json, option=orjson.OPT_UTC_Z)[:-1] + b',"data":' + data + b"}"
    return encode_by_model(envelope)


# Per payload model: whether a field may hold a model (then serialised by its own class, which costs
# more than twice as much as a payload of plain fields).
_AS_ANY: dict[type[BaseModel], bool] = {}


def holds_models(model: type[BaseModel]) -> bool:
    """Whether a field of ``model`` may hold a model (or anything at all): only then does serialising
    with ``serialize_as_any`` write something other than the plain serialiser does."""

    def may_hold(annotation: object) -> bool:
        if annotation is Any or annotation is object:
            return True
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return True
        return any(may_hold(argument) for argument in get_args(annotation))

    return any(may_hold(field.annotation) for field in model.model_fields.values())


def _as_json(value: object) -> str:
    """What orjson does not write itself: a UUID of a subclass (asyncpg's, read from PostgreSQL)."""
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def encode_by_model(envelope: Envelope[Any]) -> bytes:
    """The envelope as JSON by the model itself (the reference ``encode`` keeps to)."""
    if envelope.traceparent is None:
        omitted = _UNTRACED
    else:
        omitted = _NO_TRACESTATE if envelope.tracestate is None else frozenset()
    return envelope.model_dump_json(serialize_as_any=True, exclude=set(omitted) or None).encode()


class _Received(BaseModel):
    """A CloudEvents 1.0 envelope as it may arrive: csm's extensions optional, other ones ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    specversion: Literal["1.0"]
    id: str = Field(min_length=1)
    source: str = Field(min_length=1)
    type: str = Field(min_length=1)
    subject: str | None = None
    time: AwareDatetime | None = None
    datacontenttype: str | None = None
    partitionkey: str | None = None
    causationid: uuid.UUID | None = None
    traceparent: str | None = None
    tracestate: str | None = None
    data: dict[str, Any]


# Ids of other systems' events that are not UUIDs become UUIDs in this namespace (with the source).
_FOREIGN_IDS = uuid.UUID("6f1d3c52-1b7e-4c55-9d0a-3c1f4be2a5d1")

Headers = Sequence[tuple[str, bytes]]


Opener = Callable[[str, dict[str, Any], uuid.UUID], dict[str, Any]]


class _Head(msgspec.Struct, frozen=True):
    """The envelope's attributes as ``_Received`` takes them, decoded by msgspec: the fast path.

    It takes a subset of what ``_Received`` takes (``time`` only in the form csm writes it, UUIDs
    hyphenated or not); whatever it refuses is decided by ``_Received``, so that together they take
    exactly what ``_Received`` alone does (tests/shared/test_event_decoding.py).
    """

    specversion: Literal["1.0"]
    id: Annotated[str, msgspec.Meta(min_length=1)]
    source: Annotated[str, msgspec.Meta(min_length=1)]
    type: Annotated[str, msgspec.Meta(min_length=1)]
    data: dict[str, Any]
    subject: str | None = None
    time: str | None = None
    datacontenttype: str | None = None
    partitionkey: str | None = None
    causationid: uuid.UUID | None = None
    traceparent: str | None = None
    tracestate: str | None = None


_HEAD = msgspec.json.Decoder(_Head)
# RFC 3339 as csm and most producers write it; other forms _Received parses (or refuses) itself.
_PLAIN_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})")


class _Attributes:
    """The attributes decode goes on with, from either path."""

    __slots__ = (
        "causationid",
        "data",
        "id",
        "partitionkey",
        "source",
        "subject",
        "time",
        "traceparent",
        "tracestate",
        "type",
    )

    def __init__(self, head: _Head | _Received, time: datetime | None) -> None:
        self.id = head.id
        self.source = head.source
        self.type = head.type
        self.subject = head.subject
        self.time = time
        self.partitionkey = head.partitionkey
        self.causationid = head.causationid
        self.traceparent = head.traceparent
        self.tracestate = head.tracestate
        self.data = head.data


def _fast_head(raw: bytes) -> _Attributes | None:
    """The attributes by the fast path, or None where ``_Received`` must decide."""
    try:
        head = _HEAD.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None
    if head.time is None:
        return _Attributes(head, None)
    if _PLAIN_TIME.fullmatch(head.time) is None:
        return None
    try:
        time = datetime.fromisoformat(head.time)
    except ValueError:
        return None
    return _Attributes(head, time)


def _received(raw: bytes, headers: Headers, *, fast: bool) -> _Attributes:
    binary = {name[3:]: value for name, value in headers if name.startswith("ce_")}
    if fast and "specversion" not in binary and (taken := _fast_head(raw)) is not None:
        return taken
    try:
        if "specversion" in binary:
            attributes: dict[str, Any] = {name: value.decode() for name, value in binary.items()}
            content_type = next((v.decode() for n, v in headers if n.lower() == "content-type"), "")
            if content_type and "json" not in content_type:
                raise InvalidEvent(f"binary-mode data must be JSON, not {content_type!r}")
            head = _Received.model_validate({**attributes, "data": orjson.loads(raw)})
        else:
            head = _Received.model_validate_json(raw)
    except (ValidationError, orjson.JSONDecodeError, UnicodeDecodeError) as error:
        reason = _summary(error) if isinstance(error, ValidationError) else type(error).__name__
        raise InvalidEvent(f"not a CloudEvents 1.0 envelope: {reason}") from None
    return _Attributes(head, head.time)


_ENVELOPE_FIELDS = frozenset(Envelope.model_fields)
# The fields ``envelope_for`` sets (the others keep their defaults), as the model records them.
_MADE_FIELDS = _ENVELOPE_FIELDS - {"specversion", "datacontenttype"}


def constructed(*, _fields_set: frozenset[str] = _ENVELOPE_FIELDS, **values: Any) -> Envelope[Event]:
    """An envelope of values already valid, built without validation (``model_construct`` without
    its per-field bookkeeping, which costs more than the decoding). Every field must be given."""
    envelope = _EVENT_ENVELOPE.__new__(_EVENT_ENVELOPE)
    _set = object.__setattr__
    _set(envelope, "__dict__", values)
    _set(envelope, "__pydantic_fields_set__", set(_fields_set))
    _set(envelope, "__pydantic_extra__", None)
    _set(envelope, "__pydantic_private__", None)
    return envelope


def decode(
    raw: bytes | None,
    registry: dict[str, type[Event]],
    *,
    headers: Headers = (),
    key: bytes | None = None,
    opener: Opener | None = None,
) -> Envelope[Event]:
    """Parse a record (structured or binary mode) into a typed envelope, or raise InvalidEvent saying why."""
    return _decode(raw, registry, headers=headers, key=key, opener=opener, fast=True)


def decode_by_model(
    raw: bytes | None,
    registry: dict[str, type[Event]],
    *,
    headers: Headers = (),
    key: bytes | None = None,
    opener: Opener | None = None,
) -> Envelope[Event]:
    """``decode`` by the Pydantic models alone: the reference ``decode`` keeps to."""
    return _decode(raw, registry, headers=headers, key=key, opener=opener, fast=False)


def _decode(
    raw: bytes | None,
    registry: dict[str, type[Event]],
    *,
    headers: Headers,
    key: bytes | None,
    opener: Opener | None,
    fast: bool,
) -> Envelope[Event]:
    if raw is None:
        raise InvalidEvent("empty record value")
    head = _received(raw, headers, fast=fast)
    payload_class = registry.get(head.type)
    if payload_class is None:
        raise InvalidEvent(f"unknown event type {head.type!r}")
    data = head.data
    if "customer_id" not in data and key is not None:
        data = {**data, "customer_id": key.decode(errors="replace")}
    if opener is not None and payload_class.personal and _is_uuid(str(data.get("customer_id"))):
        try:
            data = opener(head.type, data, uuid.UUID(str(data["customer_id"])))
        except ValueError as error:
            raise InvalidEvent(f"invalid {head.type} payload: {error}") from None
    try:
        payload = payload_class.model_validate(data)
    except ValidationError as error:
        raise InvalidEvent(f"invalid {head.type} payload: {_summary(error)}") from None
    customer = str(payload.customer_id)
    if head.subject is not None and head.subject != customer and _is_uuid(head.subject):
        raise InvalidEvent("subject does not match the payload's customer_id")
    traced = _is_traceparent(head.traceparent)
    return constructed(
        specversion="1.0",
        id=_as_uuid(head.id) or uuid.uuid5(_FOREIGN_IDS, f"{head.source}\n{head.id}"),
        source=head.source,
        type=head.type,
        subject=customer,
        time=head.time or datetime.now(UTC),
        datacontenttype="application/json",
        partitionkey=head.partitionkey or customer,
        causationid=head.causationid,
        # A malformed trace context from another system is dropped, not a reason to refuse its event.
        traceparent=head.traceparent if traced else None,
        tracestate=head.tracestate if traced and _fits(head.tracestate) else None,
        data=payload,
    )


def _is_traceparent(text: str | None) -> bool:
    return text is not None and re.match(_TRACEPARENT, text) is not None


def _fits(tracestate: str | None) -> bool:
    # W3C Trace Context holds a tracestate to 512 characters; a longer one is dropped whole, not cut.
    return tracestate is not None and 0 < len(tracestate) <= 512


def _is_uuid(text: str) -> bool:
    return _as_uuid(text) is not None


def _as_uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def _summary(error: ValidationError) -> str:
    # Field names and error kinds only: values may be personal data and must stay out of logs.
    parts = [
        f"{'.'.join(str(p) for p in item['loc']) or '(root)'}: {item['type']}" for item in error.errors()
    ]
    return "; ".join(parts[:5])
