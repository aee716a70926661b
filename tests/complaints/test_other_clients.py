"""Other systems speak plain CloudEvents with their own Kafka client: csm takes them and answers in kind.

A shop's system written with librdkafka (confluent-kafka) hands complaints over in the binary and
the structured mode of the CloudEvents Kafka binding, without csm's extension attributes, and
reads back what csm published, with the same client.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import orjson
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from shared.clock import ManualClock
from shared.events.complaints import INTAKE_TOPIC
from shared.events.complaints import TOPIC as COMPLAINTS_TOPIC
from tests.complaints.helpers import TUESDAY_10_SHANGHAI, staff
from tests.harness import RunningService, Stack, eventually

SUBMITTED = "csm.complaint.submitted.v1"


@pytest.fixture
async def complaints(stack: Stack) -> RunningService:
    service = await stack.start(
        "complaints", clock=ManualClock(TUESDAY_10_SHANGHAI), scan_interval_seconds=3600
    )
    # Its topics exist once its bus has started; a producer before that would have one auto-created.
    await service.runtime.bus.wait_started()
    return service


def a_complaint(submission: uuid.UUID, customer: uuid.UUID | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "submission_id": str(submission),
        "channel": "web",
        "category": "billing",
        "severity": "high",
        "description": "Charged twice for order SO-9",
        "submitted_at": "2026-11-24T01:30:00Z",
    }
    if customer is not None:
        data["customer_id"] = str(customer)
    return data


Headers = list[tuple[str, str | bytes | None]]


def produce_with_librdkafka(bootstrap: str, records: list[tuple[str, bytes, bytes, Headers]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    delivered: list[Any] = []
    for topic, key, value, headers in records:
        producer.produce(
            topic, key=key, value=value, headers=headers, on_delivery=lambda e, _m: delivered.append(e)
        )
    producer.flush(30)
    assert delivered == [None] * len(records), delivered


def read_with_librdkafka(bootstrap: str, topic: str, expect: int) -> list[Any]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"other-system-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    # Assigned rather than subscribed: no group to join, the whole topic from its start.
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING) for partition in partitions])
    messages: list[Any] = []
    try:
        for _ in range(60):
            message = consumer.poll(1.0)
            if message is not None and message.error() is None:
                messages.append(message)
            if len(messages) >= expect:
                break
    finally:
        consumer.close()
    return messages


async def test_plain_cloudevents_from_another_client_are_taken_in_both_modes_and_csm_answers_in_kind(
    stack: Stack, complaints: RunningService
) -> None:
    by_key, by_payload = uuid.uuid4(), uuid.uuid4()
    binary_submission, structured_submission = uuid.uuid4(), uuid.uuid4()
    intake = stack.prefix + INTAKE_TOPIC
    binary_headers: Headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", b"web-form-4711"),  # not a UUID
        ("ce_source", b"/shop/web-form"),
        ("ce_type", SUBMITTED.encode()),
        ("ce_time", b"2026-11-24T01:30:05Z"),
        ("content-type", b"application/json"),
    ]
    structured = {
        "specversion": "1.0",
        "id": "app-88",
        "source": "/shop/app",
        "type": SUBMITTED,
        "datacontenttype": "application/json",
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "data": a_complaint(structured_submission, by_payload),
    }
    binary_record = (
        intake,
        str(by_key).encode(),  # the key gives the customer: the payload does not
        orjson.dumps(a_complaint(binary_submission)),
        binary_headers,
    )
    await asyncio.to_thread(
        produce_with_librdkafka,
        stack.bootstrap,
        [
            binary_record,
            binary_record,  # the same event twice (same source and id): taken once
            (
                intake,
                str(by_payload).encode(),
                orjson.dumps(structured),
                [("content-type", b"application/cloudevents+json; charset=utf-8")],
            ),
        ],
    )

    async def taken(submission: uuid.UUID) -> dict[str, Any]:
        response = await complaints.client.get(f"/complaints/{submission}", headers=staff())
        assert response.status_code == 200, response.text
        return dict(response.json())

    from_binary = await eventually(lambda: taken(binary_submission))
    from_structured = await eventually(lambda: taken(structured_submission))
    assert (from_binary["customer_id"], from_binary["source"]) == (str(by_key), "/shop/web-form")
    assert (from_structured["customer_id"], from_structured["source"]) == (str(by_payload), "/shop/app")

    # The other system reads, with its own client, what csm accepted and what csm said.
    accepted = await asyncio.to_thread(read_with_librdkafka, stack.bootstrap, intake, 3)
    [binary, *_] = [m for m in accepted if m.key() == str(by_key).encode()] or [None]
    assert binary is not None, [(m.partition(), m.offset(), m.key()) for m in accepted]
    assert dict(binary.headers())["ce_type"] == SUBMITTED.encode()
    assert json.loads(binary.value())["submission_id"] == str(binary_submission)

    published = await asyncio.to_thread(
        read_with_librdkafka, stack.bootstrap, stack.prefix + COMPLAINTS_TOPIC, 2
    )
    opened = [json.loads(m.value()) for m in published]
    assert all(
        event["specversion"] == "1.0" and event["type"] == "csm.complaint.opened.v1" for event in opened
    )
    assert sorted(event["data"]["complaint_id"] for event in opened) == sorted(
        [str(binary_submission), str(structured_submission)]
    )
    assert {m.key().decode() for m in published} == {str(by_key), str(by_payload)}
    assert all(
        dict(m.headers())["content-type"].startswith(b"application/cloudevents+json") for m in published
    )
    opened_count = await complaints.client.get(
        "/complaints", params={"customer_id": str(by_key)}, headers=staff()
    )
    assert len(opened_count.json()["items"]) == 1, "the repeated event opened one complaint"
