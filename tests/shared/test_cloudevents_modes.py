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
