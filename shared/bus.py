"""The Kafka connection a service shares between its outbox relay, its consumers and its dead letters."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Iterable, Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError

from shared.events import EPOCH_TOPIC
from shared.settings import CommonSettings

log = logging.getLogger("csm.bus")

Headers = Sequence[tuple[str, bytes]]


class Bus:
    """One producer (acks=all) per service, started lazily and retried until the broker answers."""

    def __init__(self, settings: CommonSettings, *, client_id: str) -> None:
        self.settings = settings
        self.client_id = client_id
        self._producer: AIOKafkaProducer | None = None
        self._started = asyncio.Event()
        self._start_lock = asyncio.Lock()

    @property
    def bootstrap(self) -> str:
        return self.settings.kafka_bootstrap

    def topic(self, name: str) -> str:
        """The name of a topic on the broker (with this environment's prefix)."""
        return self.settings.topic_prefix + name

    @property
    def connected(self) -> bool:
        return self._started.is_set()

    async def start(self, topics: Iterable[str] = ()) -> None:
        """Connect, creating ``topics`` if asked to; retries with back-off until it works."""
        async with self._start_lock:
            if self._producer is not None:
                return
            delay = 0.2
            while True:
                producer = AIOKafkaProducer(
                    bootstrap_servers=self.bootstrap,
                    client_id=self.client_id,
                    acks="all",
                    linger_ms=2,
                    request_timeout_ms=30_000,
                )
                try:
                    await producer.start()
                    if self.settings.kafka_create_topics:
                        await self.ensure_topics(topics)
                except (KafkaConnectionError, KafkaError, OSError) as error:
                    await producer.stop()
                    log.warning(
                        "broker at %s not reachable (%s); retrying", self.bootstrap, type(error).__name__
                    )
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
                    continue
                self._producer = producer
                self._started.set()
                return

    async def wait_started(self) -> None:
        await self._started.wait()

    @property
    def producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise RuntimeError("bus not started")
        return self._producer

    async def ensure_topics(self, topics: Iterable[str]) -> None:
        """Create the topics that do not exist yet; the epoch topic always has one partition."""
        wanted = sorted({self.topic(name) for name in topics} | {self.topic(EPOCH_TOPIC)})
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, client_id=f"{self.client_id}-admin")
        await admin.start()
        try:
            existing = set(await admin.list_topics())
            missing = [
                NewTopic(name, 1 if name == self.topic(EPOCH_TOPIC) else self.settings.kafka_partitions, 1)
                for name in wanted
                if name not in existing
            ]
            if missing:
                # Another service may create one between our list and create.
                with contextlib.suppress(TopicAlreadyExistsError):
                    await admin.create_topics(missing)
        finally:
            await admin.close()

    async def send(
        self, topic: str, *, key: str | bytes | None, value: bytes | None, headers: Headers = ()
    ) -> asyncio.Future[object]:
        """Queue one record on ``topic`` (unprefixed); the future resolves once the broker acknowledged it."""
        if isinstance(key, str):
            key = key.encode()
        acknowledgement: asyncio.Future[object] = await self.producer.send(
            self.topic(topic), value=value, key=key, headers=list(headers)
        )
        return acknowledgement

    async def broker_epoch(self) -> str:
        """The identity of the broker's log: the first record of the epoch topic, written if absent.

        A memory-only broker forgets everything when it restarts; a new epoch tells the
        outbox relay to publish its retained events again.
        """
        for _ in range(2):
            epoch = await self._read_epoch()
            if epoch is not None:
                return epoch
            await self.producer.send_and_wait(
                self.topic(EPOCH_TOPIC), value=str(uuid.uuid4()).encode(), key=b"epoch"
            )
        epoch = await self._read_epoch()
        if epoch is None:
            raise KafkaError("could not read the broker epoch")
        return epoch

    async def _read_epoch(self) -> str | None:
        partition = TopicPartition(self.topic(EPOCH_TOPIC), 0)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, client_id=f"{self.client_id}-epoch", enable_auto_commit=False
        )
        await consumer.start()
        try:
            consumer.assign([partition])
            await consumer.seek_to_beginning(partition)
            records = await consumer.getmany(partition, timeout_ms=2_000, max_records=1)
            first = records.get(partition)
            return first[0].value.decode() if first else None
        finally:
            await consumer.stop()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
            self._started.clear()
