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

import re
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, Literal, TypeVar

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
    subject = str(event.customer_id)
    return _EVENT_ENVELOPE(
        id=event_id or uuid.uuid4(),
        source=source,
        type=event.type,
        subject=subject,
        time=time or datetime.now(UTC),
        partitionkey=subject,
        causationid=cause,
        traceparent=traceparent,
        tracestate=tracestate,
        data=event,
    )


# An event outside any trace is written without the tracing attributes, as it was before them.
_UNTRACED = frozenset({"traceparent", "tracestate"})
_NO_TRACESTATE = frozenset({"tracestate"})


def encode(envelope: Envelope[Any]) -> bytes:
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


def decode(
    raw: bytes | None,
    registry: dict[str, type[Event]],
    *,
    headers: Headers = (),
    key: bytes | None = None,
    opener: Opener | None = None,
) -> Envelope[Event]:
    """Parse a record (structured or binary mode) into a typed envelope, or raise InvalidEvent saying why."""
    if raw is None:
        raise InvalidEvent("empty record value")
    binary = {name[3:]: value for name, value in headers if name.startswith("ce_")}
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
    if head.subject is not None and _is_uuid(head.subject) and head.subject != customer:
        raise InvalidEvent("subject does not match the payload's customer_id")
    return Envelope[Event].model_construct(
        specversion="1.0",
        id=uuid.UUID(head.id) if _is_uuid(head.id) else uuid.uuid5(_FOREIGN_IDS, f"{head.source}\n{head.id}"),
        source=head.source,
        type=head.type,
        subject=customer,
        time=head.time or datetime.now(UTC),
        datacontenttype="application/json",
        partitionkey=head.partitionkey or customer,
        causationid=head.causationid,
        # A malformed trace context from another system is dropped, not a reason to refuse its event.
        traceparent=head.traceparent if _is_traceparent(head.traceparent) else None,
        tracestate=head.tracestate if _is_traceparent(head.traceparent) and _fits(head.tracestate) else None,
        data=payload,
    )


def _is_traceparent(text: str | None) -> bool:
    return text is not None and re.match(_TRACEPARENT, text) is not None


def _fits(tracestate: str | None) -> bool:
    # W3C Trace Context holds a tracestate to 512 characters; a longer one is dropped whole, not cut.
    return tracestate is not None and 0 < len(tracestate) <= 512


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _summary(error: ValidationError) -> str:
    # Field names and error kinds only: values may be personal data and must stay out of logs.
    parts = [
        f"{'.'.join(str(p) for p in item['loc']) or '(root)'}: {item['type']}" for item in error.errors()
    ]
    return "; ".join(parts[:5])
