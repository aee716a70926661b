"""Reading and writing raw records on the test broker."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord

from shared.events import Envelope, Event, encode, envelope_for
from shared.events.customer import PurchaseRecorded, SalesChannel


def purchase(customer_id: uuid.UUID, amount: str = "10.00", order: str | None = None) -> Envelope[Event]:
    event = PurchaseRecorded(
        customer_id=customer_id,
        purchase_id=uuid.uuid4(),
        order_id=order or f"SO-{uuid.uuid4().hex[:8]}",
        amount=Decimal(amount),
        currency="CNY",
        channel=SalesChannel.web,
        purchased_at=datetime.now(UTC),
        item_count=1,
        first_purchase=False,
    )
    return envelope_for(event, source="/tests")


async def produce(bootstrap: str, topic: str, records: list[tuple[str, bytes]]) -> None:
    """Send (key, value) records in order and wait for the broker to acknowledge them."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(topic, value=value, key=key.encode())
    finally:
        await producer.stop()


async def produce_events(bootstrap: str, topic: str, envelopes: list[Envelope[Event]]) -> None:
    await produce(bootstrap, topic, [(env.partitionkey, encode(env)) for env in envelopes])


async def read_all(
    bootstrap: str, topic: str, *, expect: int, timeout_ms: int = 20_000
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record on ``topic`` from the beginning, once at least ``expect`` have arrived."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    try:
        waited = 0
        while len(records) < expect and waited < timeout_ms:
            batch = await consumer.getmany(timeout_ms=500)
            waited += 500
            for partition_records in batch.values():
                records.extend(partition_records)
    finally:
        await consumer.stop()
    return records


def as_consumed(envelopes: list[Envelope[Event]], *, prefix: str) -> list[ConsumerRecord[bytes, bytes]]:
    """The records a consumer would fetch for these events, each on its own topic (``prefix`` first),
    for handing straight to ``EventConsumer.process`` without a broker."""
    return [
        ConsumerRecord(
            topic=prefix + envelope.data.topic,
            partition=0,
            offset=offset,
            timestamp=0,
            timestamp_type=0,
            key=envelope.partitionkey.encode(),
            value=encode(envelope),
            checksum=None,
            serialized_key_size=0,
            serialized_value_size=0,
            headers=(),
        )
        for offset, envelope in enumerate(envelopes)
    ]
