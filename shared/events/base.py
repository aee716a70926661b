"""The CloudEvents 1.0 envelope and the base of every event payload.

Events travel in the CloudEvents Kafka protocol binding, structured mode: the record value is
the whole envelope as JSON (``content-type: application/cloudevents+json``) and the record key
is the customer id, so that one customer's events keep their order within a partition.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"


class Event(BaseModel):
    """The payload of one versioned event type; every event is about one customer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: ClassVar[str]
    topic: ClassVar[str]

    customer_id: uuid.UUID


E = TypeVar("E")


class Envelope(BaseModel, Generic[E]):
    """A CloudEvents 1.0 envelope with the csm extensions ``partitionkey`` and ``causationid``."""

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
        data=event,
    )


def encode(envelope: Envelope[Any]) -> bytes:
    return envelope.model_dump_json(serialize_as_any=True).encode()


def decode(raw: bytes | None, registry: dict[str, type[Event]]) -> Envelope[Event]:
    """Parse a record value into a typed envelope, or raise InvalidEvent saying why."""
    if raw is None:
        raise InvalidEvent("empty record value")
    try:
        head = Envelope[dict[str, Any]].model_validate_json(raw)
    except ValidationError as error:
        raise InvalidEvent(f"not a CloudEvents 1.0 envelope: {_summary(error)}") from None
    payload_class = registry.get(head.type)
    if payload_class is None:
        raise InvalidEvent(f"unknown event type {head.type!r}")
    try:
        payload = payload_class.model_validate(head.data)
    except ValidationError as error:
        raise InvalidEvent(f"invalid {head.type} payload: {_summary(error)}") from None
    if head.subject != str(payload.customer_id):
        raise InvalidEvent("subject does not match the payload's customer_id")
    fields = {name: getattr(head, name) for name in Envelope.model_fields if name != "data"}
    return Envelope[Event].model_construct(**fields, data=payload)


def _summary(error: ValidationError) -> str:
    # Field names and error kinds only: values may be personal data and must stay out of logs.
    parts = [
        f"{'.'.join(str(p) for p in item['loc']) or '(root)'}: {item['type']}" for item in error.errors()
    ]
    return "; ".join(parts[:5])
