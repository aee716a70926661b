"""The event catalog is a contract with other systems: its JSON is pinned here.

A change to an event's schema fails ``test_the_schema_of_every_event_is_pinned``. If the change
is compatible (a new optional field), regenerate the snapshots with
``CSM_UPDATE_CONTRACTS=1 pytest tests/shared/test_event_contracts.py``; if it is not, publish a new
event type with the next version suffix instead.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from shared.events import ALL_EVENTS, REGISTRY, TOPICS, Envelope, Event, decode, encode, envelope_for
from shared.events.asyncapi import catalog_document
from tests.shared.event_examples import FIELDS, FIXED_ID, MOMENT, example

CONTRACTS = Path(__file__).parent / "contracts"

REQUIRED = {
    "csm.customer.registered.v1",
    "csm.customer.updated.v1",
    "csm.purchase.recorded.v1",
    "csm.purchase.refunded.v1",
    "csm.interaction.logged.v1",
    "csm.complaint.opened.v1",
    "csm.complaint.resolved.v1",
    "csm.segment.tier_changed.v1",
    "csm.notification.sent.v1",
}


def test_the_catalog_has_every_required_event_type_versioned_and_in_the_past_tense() -> None:
    assert set(REGISTRY) >= REQUIRED
    assert len(REGISTRY) == len(ALL_EVENTS), "two models claim one type"
    for event_type in REGISTRY:
        prefix, *_, version = event_type.split(".")
        assert prefix == "csm" and version == "v1", event_type


def test_every_event_travels_on_its_producers_topic() -> None:
    for event in ALL_EVENTS:
        assert event.topic in TOPICS.values(), event.type


@pytest.mark.parametrize("event_type", sorted(FIELDS))
def test_an_example_of_every_event_survives_the_wire(event_type: str) -> None:
    envelope = envelope_for(example(event_type), source="/tests", time=MOMENT, event_id=FIXED_ID)
    decoded = decode(encode(envelope), REGISTRY)
    assert decoded == envelope
    assert type(decoded.data) is REGISTRY[event_type]
    wire = json.loads(encode(envelope))
    assert {"specversion", "id", "source", "type", "subject", "time", "datacontenttype", "data"} <= set(wire)
    assert wire["subject"] == wire["partitionkey"] == str(FIXED_ID)


def test_there_is_an_example_for_every_event_type() -> None:
    assert set(FIELDS) == set(REGISTRY)


@pytest.mark.parametrize("event", ALL_EVENTS, ids=lambda event: event.type)
def test_the_schema_of_every_event_is_pinned(event: type[Event]) -> None:
    snapshot = CONTRACTS / f"{event.type}.json"
    schema = Envelope[event].model_json_schema()  # type: ignore[valid-type]
    if os.environ.get("CSM_UPDATE_CONTRACTS"):
        CONTRACTS.mkdir(exist_ok=True)
        snapshot.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
    assert snapshot.exists(), f"no contract for {event.type}; see this module's docstring"
    assert json.loads(snapshot.read_text()) == schema, f"{event.type} changed; see this module's docstring"


def test_a_subject_that_disagrees_with_the_payload_is_refused() -> None:
    envelope = envelope_for(example("csm.customer.erased.v1"), source="/tests")
    tampered = encode(envelope).replace(
        f'"subject":"{FIXED_ID}"'.encode(), f'"subject":"{uuid.uuid4()}"'.encode()
    )
    with pytest.raises(ValueError, match="subject does not match"):
        decode(tampered, REGISTRY)


def test_the_asyncapi_catalog_describes_every_event_on_its_topic() -> None:
    document = catalog_document(version="test", bootstrap="kafka:9092")
    assert document["asyncapi"] == "3.0.0"
    channels = {channel["address"]: set(channel["messages"]) for channel in document["channels"].values()}
    assert set(channels) == set(TOPICS.values())
    described = {message["name"] for message in document["components"]["messages"].values()}
    assert described == set(REGISTRY)
    for message in document["components"]["messages"].values():
        assert message["contentType"].startswith("application/cloudevents+json")
        assert message["payload"]["properties"]["data"]["$ref"].startswith("#/components/schemas/")
    referenced = json.dumps(document).count('"$ref": "#/components/schemas/')
    assert referenced and all(
        name in document["components"]["schemas"] for name in ("PurchaseRecorded", "Tier")
    )


def test_what_csm_writes_is_what_its_asyncapi_catalog_says() -> None:
    document = catalog_document(version="test", bootstrap="kafka:9092", topic_prefix="staging.")
    messages = {message["name"]: message for message in document["components"]["messages"].values()}
    for event_type, message in messages.items():
        schema = {**message["payload"], "components": document["components"]}
        written = json.loads(encode(envelope_for(example(event_type), source="/tests")))
        Draft202012Validator(schema).validate(written)
        assert message["payload"]["properties"]["type"]["const"] == event_type
        assert "specversion" in message["payload"]["required"]
        retyped = {**written, "type": "csm.something.else.v1"}
        assert not Draft202012Validator(schema).is_valid(retyped), "type is pinned per message"
    money = document["components"]["schemas"]["PurchaseRecorded"]["properties"]["amount"]
    assert money["type"] == "string" and re.fullmatch(money["pattern"], "199.99")
    assert not re.fullmatch(money["pattern"], "1e3") and not re.fullmatch(money["pattern"], "-1.00")


def test_the_catalog_honours_the_topic_prefix_and_marks_the_intake_as_received() -> None:
    document = catalog_document(version="test", bootstrap="kafka:9092", topic_prefix="staging.")
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert addresses == {"staging." + topic for topic in TOPICS.values()}
    actions = {
        operation["messages"][0]["$ref"].rsplit("/", 1)[-1]: operation["action"]
        for operation in document["operations"].values()
    }
    assert actions["csm_complaint_submitted_v1"] == "receive"
    assert {action for name, action in actions.items() if name != "csm_complaint_submitted_v1"} == {"send"}
