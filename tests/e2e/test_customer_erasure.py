"""Erasure reaches every service: after customer.erased has been consumed, no database holds the person.

Only the customer API is used to give the person data; the other services learn about them from
events, as they would in production, and whatever they keep must be gone once they have consumed
the erasure. A service whose consumer has not (yet) a handler for the erasure is checked once it
has read past the event, so data it projected without purging it is caught too.
"""

from __future__ import annotations

import asyncio
import uuid

import orjson
import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, TopicPartition

from shared import dead_letters
from shared.db import Database, utcnow
from shared.events.customer import CustomerErased, CustomerRegistered
from shared.messaging import dead_letter, inbox_message, outbox_message
from shared.roles import Role
from shared.sealing import ERASED, PREFIX
from tests.customer.helpers import leaks, staged
from tests.harness import RunningService, Stack, auth, eventually
from tests.shared.bus_helpers import read_all

pytestmark = pytest.mark.e2e

SERVICES = ("customer", "segmentation", "complaints", "notify")
PERSON = {
    "kind": "retailer",
    "name": "Ouyang Xiuying",
    "email": "ouyang.xiuying@example.com",
    "phone": "+8613955556666",
    "backup_phone": "+8613977778888",
    "region": "Hangzhou West Lake",
    "tags": ["ouyang special"],
}
SECRETS = (
    "Ouyang Xiuying",
    "ouyang.xiuying@example.com",
    "+8613955556666",
    "+8613977778888",
    "Hangzhou West Lake",
)


async def caught_up(stack: Stack, service: RunningService) -> None:
    """Fail unless the service's consumer group has committed every record now on the topics it reads."""
    consumer = service.runtime.consumer
    if consumer is None:
        return
    reader = AIOKafkaConsumer(
        bootstrap_servers=stack.bootstrap,
        group_id=consumer.group_id,
        enable_auto_commit=False,
    )
    await reader.start()
    try:
        partitions = [
            TopicPartition(stack.prefix + topic, p)
            for topic in consumer.topics
            for p in reader.partitions_for_topic(stack.prefix + topic) or ()
        ]
        ends = await reader.end_offsets(partitions)
        for partition in partitions:
            assert (await reader.committed(partition) or 0) >= ends[partition], (
                f"{service.name} behind on {partition}"
            )
    finally:
        await reader.stop()


async def test_after_erasure_no_service_holds_the_persons_data(stack: Stack) -> None:
    for name in SERVICES:
        await stack.start(name)
    client = stack["customer"].client
    registered = await client.post("/customers", json=PERSON, headers=auth())
    assert registered.status_code == 201, registered.text
    cid = registered.json()["id"]
    base = f"/customers/{cid}"
    for method, url, body in [
        (
            "post",
            f"{base}/purchases",
            {
                "order_id": "SO-OUYANG",
                "amount": "12000.00",
                "currency": "CNY",
                "line_items": [
                    {"sku": "TEA-1", "name": "Engraved: Ouyang Xiuying", "unit_price": "12000.00"}
                ],
            },
        ),
        (
            "post",
            f"{base}/contacts",
            {"name": "Ouyang Xiuying", "role": "decision_maker", "phone": "+8613955556666"},
        ),
        (
            "post",
            f"{base}/interactions",
            {
                "channel": "phone",
                "kind": "signal",
                "signal": "usage_drop",
                "outcome": "Ouyang Xiuying sounded upset",
            },
        ),
        ("put", f"{base}/consents/email/marketing", {"granted": True, "source": "web form"}),
        ("put", f"{base}/interests", {"interests": ["west lake tea"], "source": "Ouyang Xiuying"}),
        ("patch", base, {"email": "ouyang.xiuying@example.com", "notes": "Ouyang Xiuying prefers mornings"}),
    ]:
        response = await getattr(client, method)(url, json=body, headers=auth())
        assert response.status_code in (200, 201), response.text
    complaint = await a_complaint_told_with_the_persons_words(stack, cid)

    async def everyone_caught_up() -> None:
        for name in SERVICES:
            await caught_up(stack, stack[name])

    await eventually(everyone_caught_up, timeout=60)
    assert await leaks(stack["customer"].database_url, *SECRETS), (
        "the customer service had the data to begin with"
    )
    before = await everything_on_the_broker(stack)
    assert PREFIX.encode() in before and not [s for s in SECRETS if s.encode() in before], (
        "personal data travels sealed"
    )
    assert await opened_profile_names(stack, uuid.UUID(cid)) == {"Ouyang Xiuying"}, (
        "and every csm service can open it while the person is a customer"
    )

    # Each service dead-lettered a record about the person once (it was later fixed by hand), and
    # one about someone else: erasure must take the first and leave the second.
    for name in SERVICES:
        await keep_dead_letters(stack[name].database_url, person=cid)

    assert (await client.delete(base, headers=auth(Role.admin))).status_code == 204
    [erased] = await staged(stack["customer"], CustomerErased.type)
    erased_id = uuid.UUID(erased["id"])

    async def published() -> None:
        db = Database(stack["customer"].database_url)
        try:
            async with db.read() as session:
                moment = await session.scalar(
                    sa.select(outbox_message.c.published_at).where(outbox_message.c.event_id == erased_id)
                )
        finally:
            await db.dispose()
        assert moment is not None

    # Only then do the topics' end offsets include the erasure.
    await eventually(published)

    async def erasure_consumed() -> None:
        for name in SERVICES:
            service = stack[name]
            handles = (
                service.runtime.consumer is not None
                and CustomerErased.type in service.runtime.consumer.handlers
            )
            if handles:
                db = Database(service.database_url)
                try:
                    async with db.read() as session:
                        seen = await session.scalar(
                            sa.select(sa.func.count())
                            .select_from(inbox_message)
                            .where(inbox_message.c.event_id == erased_id)
                        )
                finally:
                    await db.dispose()
                assert seen == 1, f"{name} has not consumed the erasure yet"
            else:
                await caught_up(stack, service)

    await eventually(erasure_consumed, timeout=60)
    found = {name: await leaks(stack[name].database_url, *SECRETS) for name in SERVICES}
    assert found == {name: [] for name in SERVICES}
    for name in SERVICES:
        assert await dead_letter_keys(stack[name].database_url) == [SOMEONE_ELSE.encode()], name
    escalations = await stack["complaints"].client.get(
        f"/complaints/{complaint}/escalations", headers=auth(Role.supervisor)
    )
    assert escalations.status_code == 200 and not [s for s in SECRETS if s in escalations.text]

    # The broker's log cannot be edited: what it holds of the person can no longer be opened.
    after = await everything_on_the_broker(stack)
    assert not [s for s in SECRETS if s.encode() in after]
    assert await opened_profile_names(stack, uuid.UUID(cid)) == {ERASED}
    if stack.databases.kind == "sqlite":
        files = [
            path
            for path in stack.databases.directory.iterdir()
            if stack.prefix in path.name or any(path.name.startswith(s.database_url.rsplit("/", 1)[1])
                                                for s in stack.services.values())
        ]  # fmt: skip
        assert {path.suffix for path in files} >= {".db"}
        on_disk = {path.name: path.read_bytes() for path in files}
        assert {name: [s for s in SECRETS if s.encode() in raw] for name, raw in on_disk.items()} == {
            name: [] for name in on_disk
        }, "nothing left in the files, their free pages or their write-ahead logs"


SOMEONE_ELSE = str(uuid.UUID(int=7))


async def a_complaint_told_with_the_persons_words(stack: Stack, customer_id: str) -> str:
    """A complaint whose description, escalation, resolution and survey all quote the person."""
    complaints = stack["complaints"].client
    agent = auth(Role.agent, "agent-ouyang")
    opened = await complaints.post(
        "/complaints",
        json={
            "customer_id": customer_id,
            "channel": "phone",
            "category": "product_quality",
            "description": "Ouyang Xiuying (+8613955556666) says the tea arrived crushed",
        },
        headers=agent,
    )
    assert opened.status_code == 201, opened.text
    path = f"/complaints/{opened.json()['id']}"
    for url, body, headers in [
        (f"{path}/escalations", {"reason": "threatens to go to press, +8613955556666"}, agent),
        (
            f"{path}/resolution",
            {"summary": "Called Ouyang Xiuying back on +8613977778888", "root_cause": "product_defect"},
            auth(Role.supervisor),
        ),
        (
            f"{path}/survey",
            {"csat": 5, "comment": "Ouyang Xiuying is happy now"},
            auth(Role.service, "survey"),
        ),
    ]:
        response = await complaints.post(url, json=body, headers=headers)
        assert response.status_code in (200, 201), response.text
    return str(opened.json()["id"])


async def everything_on_the_broker(stack: Stack) -> bytes:
    """Keys, values and headers of every record of every topic of the stack, from the beginning."""
    # On a loaded machine a consumer just started can know fewer topics' partitions than the broker
    # names, or hear end offsets of 0 for topics that hold records (CI read only the epoch topic
    # twice): start afresh until it knows every topic and sees the customer topic's records, so that
    # no topic goes unread.
    customer_topic = stack.prefix + CustomerRegistered.topic
    for _ in range(50):
        reader = AIOKafkaConsumer(bootstrap_servers=stack.bootstrap, enable_auto_commit=False, group_id=None)
        await reader.start()
        topics = [topic for topic in await reader.topics() if topic.startswith(stack.prefix)]
        unknown = [topic for topic in topics if not reader.partitions_for_topic(topic)]
        partitions = [
            TopicPartition(topic, p) for topic in topics for p in reader.partitions_for_topic(topic) or ()
        ]
        if not unknown:
            reader.assign(partitions)
            await reader.seek_to_beginning(*partitions)
            ends = await reader.end_offsets(partitions)
            if sum(end for partition, end in ends.items() if partition.topic == customer_topic):
                break
        await reader.stop()
        await asyncio.sleep(0.2)
    else:
        raise AssertionError(f"the broker never showed every topic and its records: {unknown or topics}")
    try:
        chunks: list[bytes] = []
        while [p for p in partitions if await reader.position(p) < ends[p]]:
            for records in (await reader.getmany(timeout_ms=500)).values():
                for record in records:
                    chunks += [record.key or b"", record.value or b""]
                    chunks += [value for _, value in record.headers]
        assert len(topics) >= 8, topics  # four service topics, their dead-letter topics, intake
        return b"\n".join(chunks)
    finally:
        await reader.stop()


async def opened_profile_names(stack: Stack, customer_id: uuid.UUID) -> set[str]:
    """The names the customer's registration on the broker opens to, with the services' key store."""
    records = await read_all(stack.bootstrap, stack.prefix + CustomerRegistered.topic, expect=1)
    names = set()
    for record in records:
        envelope = orjson.loads(record.value)
        if envelope["type"] == CustomerRegistered.type and envelope["data"]["customer_id"] == str(
            customer_id
        ):
            names.add((await stack.opened(envelope))["profile"]["name"])
    return names


async def keep_dead_letters(url: str, *, person: str) -> None:
    db = Database(url)
    try:
        async with db.unit_of_work() as session:
            for key, value in (
                (person.encode(), orjson.dumps({"data": {"customer_id": person, "name": PERSON["name"]}})),
                (b"not-a-customer", orjson.dumps({"data": {"note": f"about {PERSON['email']}, {person}"}})),
                (SOMEONE_ELSE.encode(), orjson.dumps({"data": {"customer_id": SOMEONE_ELSE}})),
            ):
                await dead_letters.keep(
                    session=session,
                    consumer="test",
                    topic="csm.customer",
                    partition=0,
                    offset=0,
                    key=key,
                    value=value,
                    headers=[],
                    kind="handler_error",
                    reason="test",
                    attempts=1,
                    now=utcnow(),
                )
    finally:
        await db.dispose()


async def dead_letter_keys(url: str) -> list[bytes]:
    db = Database(url)
    try:
        async with db.read() as session:
            return list((await session.scalars(sa.select(dead_letter.c.key))).all())
    finally:
        await db.dispose()
