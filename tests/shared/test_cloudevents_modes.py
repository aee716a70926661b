"""Reading the CloudEvents Kafka binding: structured and binary mode, with or without csm's extensions."""

from __future__ import annotations

import uuid

import orjson
import pytest

from shared.events import REGISTRY, InvalidEvent, decode, encode
from tests.shared.bus_helpers import purchase


def test_csm_s_own_event_reads_back_as_it_was_written() -> None:
    envelope = purchase(uuid.uuid4())
    assert decode(encode(envelope), REGISTRY) == envelope


def test_a_binary_mode_event_takes_its_attributes_from_the_headers_and_its_customer_from_the_key() -> None:
    customer = uuid.uuid4()
    data = orjson.loads(encode(purchase(customer)))["data"]
    del data["customer_id"]
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", b"order-17"),
        ("ce_source", b"/erp"),
        ("ce_type", b"csm.purchase.recorded.v1"),
        ("content-type", b"application/json"),
    ]
    first = decode(orjson.dumps(data), REGISTRY, headers=headers, key=str(customer).encode())
    again = decode(orjson.dumps(data), REGISTRY, headers=headers, key=str(customer).encode())
    assert first.data.customer_id == customer
    assert (first.subject, first.partitionkey, first.source) == (str(customer), str(customer), "/erp")
    assert first.id == again.id, "the same source and id are the same event"
    other_source = decode(
        orjson.dumps(data),
        REGISTRY,
        headers=[*headers[:2], ("ce_source", b"/pos"), *headers[3:]],
        key=str(customer).encode(),
    )
    assert other_source.id != first.id


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"subject": str(uuid.uuid4())}, "subject does not match"),
        ({"specversion": "0.3"}, "not a CloudEvents 1.0 envelope: specversion"),
        ({"id": ""}, "not a CloudEvents 1.0 envelope: id"),
    ],
)
def test_what_contradicts_itself_or_is_not_cloudevents_1_0_is_refused(
    change: dict[str, str], reason: str
) -> None:
    body = {**orjson.loads(encode(purchase(uuid.uuid4()))), **change}
    with pytest.raises(InvalidEvent, match=reason):
        decode(orjson.dumps(body), REGISTRY)


def test_binary_mode_data_that_is_not_json_is_refused() -> None:
    headers = [("ce_specversion", b"1.0"), ("ce_id", b"1"), ("ce_source", b"/x"), ("ce_type", b"t")]
    with pytest.raises(InvalidEvent, match="must be JSON"):
        decode(b"<xml/>", REGISTRY, headers=[*headers, ("content-type", b"application/xml")])


TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_the_trace_context_travels_as_the_distributed_tracing_extension_and_old_events_still_read() -> None:
    untraced = purchase(uuid.uuid4())
    body = orjson.loads(encode(untraced))
    assert "traceparent" not in body and "tracestate" not in body, "an untraced event is written as before"
    assert decode(encode(untraced), REGISTRY).traceparent is None

    traced = untraced.model_copy(update={"traceparent": TRACEPARENT, "tracestate": "csm=1"})
    body = orjson.loads(encode(traced))
    assert (body["traceparent"], body["tracestate"]) == (TRACEPARENT, "csm=1")
    read = decode(encode(traced), REGISTRY)
    assert (read.traceparent, read.tracestate) == (TRACEPARENT, "csm=1")


def test_a_binary_mode_event_brings_its_trace_context_in_ce_headers() -> None:
    customer = uuid.uuid4()
    data = orjson.loads(encode(purchase(customer)))["data"]
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", b"order-18"),
        ("ce_source", b"/erp"),
        ("ce_type", b"csm.purchase.recorded.v1"),
        ("ce_traceparent", TRACEPARENT.encode()),
        ("content-type", b"application/json"),
    ]
    assert decode(orjson.dumps(data), REGISTRY, headers=headers).traceparent == TRACEPARENT


@pytest.mark.parametrize("traceparent", ["not-a-trace", "00-xyz-00f067aa0ba902b7-01", ""])
def test_another_system_s_malformed_trace_context_is_dropped_not_a_reason_to_refuse_its_event(
    traceparent: str,
) -> None:
    body = {**orjson.loads(encode(purchase(uuid.uuid4()))), "traceparent": traceparent, "tracestate": "x=1"}
    read = decode(orjson.dumps(body), REGISTRY)
    assert (read.traceparent, read.tracestate) == (None, None)
    assert read.type == "csm.purchase.recorded.v1"
