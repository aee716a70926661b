"""The Kafka connection a service shares between its outbox relay, its consumers and its dead letters.

It also knows which log it is writing to. A broker that restarts empty (the embedded one keeps
its log in memory; a production cluster can be restored or rebuilt) is a new log: the bus
notices it by the log's *epoch* (the first record of ``csm.epoch``), creates the service's
topics again with the configured partitions, and bumps its ``generation`` so that the outbox
relay republishes what it retains and the consumer reads the new log from its start. Every
record the bus sends carries the epoch in the ``csm-epoch`` header, so that a record sent into
the new log before the change was noticed can be told apart (and ignored: it is republished).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import struct
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import aiokafka.client
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.protocol.metadata import MetadataRequest

from shared.events import EPOCH_TOPIC
from shared.kafka_security import security_options
from shared.settings import CommonSettings

log = logging.getLogger("csm.bus")

# Kafka's default for records without a key (a random partition).
_PARTITIONER = DefaultPartitioner()

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


@functools.lru_cache(maxsize=65_536)
def murmur2(key: bytes) -> int:
    """Kafka's murmur2 hash of a key (``org.apache.kafka.common.utils.Utils.murmur2``), as aiokafka's
    ``murmur2`` returns it, a word at a time; a customer's key is hashed once while it stays cached."""
    length = len(key)
    h = 0x9747B28C ^ length
    blocks = length // 4
    for k in struct.unpack_from(f"<{blocks}I", key):
        k = (k * _M) & _MASK
        k ^= k >> 24
        h = ((h * _M) & _MASK) ^ ((k * _M) & _MASK)
    tail, rest = length & 3, blocks * 4
    if tail == 3:
        h ^= key[rest + 2] << 16
    if tail >= 2:
        h ^= key[rest + 1] << 8
    if tail >= 1:
        h ^= key[rest]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


def partition_for(key: bytes | None, partitions: Sequence[int]) -> int:
    """The partition of ``partitions`` (sorted) that Kafka's default partitioner picks for ``key``."""
    if key is None:
        return int(_PARTITIONER(None, partitions, partitions))
    return partitions[(murmur2(key) & 0x7FFFFFFF) % len(partitions)]


Headers = Sequence[tuple[str, bytes]]

# The header naming the log a record was sent to (see the module's docstring).
EPOCH_HEADER = "csm-epoch"


# A broker that does not tell its epoch within this long is reported unreachable.
_EPOCH_CHECK_TIMEOUT = 10.0

# The most one produce request carries; a partition's records are sent in batches up to this.
_BATCH_BYTES = 1_000_000


@dataclass(frozen=True)
class Outgoing:
    """A record to publish, on an unprefixed topic."""

    topic: str
    key: bytes | None
    value: bytes
    headers: Headers = ()


def _stamped(headers: Headers, epoch: str) -> list[tuple[str, bytes]]:
    """``headers`` with the epoch of the log the record is meant for (any earlier stamp replaced)."""
    return [*(h for h in headers if h[0] != EPOCH_HEADER), (EPOCH_HEADER, epoch.encode())]


class _NoAutoCreate(MetadataRequest):  # type: ignore[misc]
    """A metadata request that never asks the broker to create the topic it names.

    aiokafka asks for auto-creation in every lookup and has no option against it; a restarted
    broker would then create topics with its own partition count as soon as any client looks
    them up, and per-key order would change with it. csm creates its topics itself.
    """

    def __init__(
        self, topics: list[str] | None = None, allow_auto_topic_creation: bool | None = None
    ) -> None:
        super().__init__(topics, allow_auto_topic_creation=False)


aiokafka.client.MetadataRequest = _NoAutoCreate


class Bus:
    """One producer (acks=all) per service, started lazily and retried until the broker answers."""

    def __init__(self, settings: CommonSettings, *, client_id: str) -> None:
        self.settings = settings
        self.client_id = client_id
        # The topics this service creates (again, after a new log): set by ``start``.
        self.topics: list[str] = []
        # The log being written to, and how many times it changed under this process.
        self.epoch: str | None = None
        self.generation = 0
        # False while the broker does not answer the epoch check.
        self.reachable = True
        self._producer: AIOKafkaProducer | None = None
        self._epoch_reader: AIOKafkaConsumer | None = None
        self._started = asyncio.Event()
        self._start_lock = asyncio.Lock()
        self._epoch_lock = asyncio.Lock()

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
        """Connect, create ``topics`` (if allowed) and learn the epoch; retries until it works."""
        async with self._start_lock:
            if self._producer is not None:
                return
            self.topics = sorted(set(topics))
            delay = 0.2
            while True:
                producer = AIOKafkaProducer(
                    bootstrap_servers=self.bootstrap,
                    client_id=self.client_id,
                    acks="all",
                    linger_ms=2,
                    request_timeout_ms=30_000,
                    max_batch_size=_BATCH_BYTES,
                    max_request_size=_BATCH_BYTES + 48_576,
                    **security_options(self.settings),
                )
                reader = AIOKafkaConsumer(
                    bootstrap_servers=self.bootstrap,
                    client_id=f"{self.client_id}-epoch",
                    enable_auto_commit=False,
                    **security_options(self.settings),
                )
                try:
                    await producer.start()
                    await reader.start()
                    reader.assign([TopicPartition(self.topic(EPOCH_TOPIC), 0)])
                    self._producer, self._epoch_reader = producer, reader
                    if self.settings.kafka_create_topics:
                        await self.ensure_topics(self.topics)
                    self.epoch = await self._current_epoch()
                except (KafkaConnectionError, KafkaError, OSError, TimeoutError) as error:
                    self._producer = self._epoch_reader = None
                    await producer.stop()
                    await reader.stop()
                    log.warning(
                        "broker at %s not reachable (%s); retrying", self.bootstrap, type(error).__name__
                    )
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
                    continue
                self._started.set()
                return

    async def watch(self, *, every: float) -> None:
        """Check the broker's epoch every ``every`` seconds, for the life of the service."""
        await self.wait_started()
        while True:
            await asyncio.sleep(every)
            try:
                await self.refresh_epoch()
            except (KafkaError, OSError, TimeoutError) as error:
                log.warning("broker at %s: epoch check failed (%s)", self.bootstrap, type(error).__name__)

    async def refresh_epoch(self) -> int:
        """Read the broker's epoch; if the log is new, create the topics again and bump the generation.

        Returns the generation. Raises (and marks the bus unreachable) if the broker does not answer.
        """
        async with self._epoch_lock:
            try:
                async with asyncio.timeout(_EPOCH_CHECK_TIMEOUT):
                    epoch = await self._current_epoch()
            except (KafkaError, OSError, TimeoutError):
                self.reachable = False
                raise
            if epoch != self.epoch:
                log.warning(
                    "the broker at %s has a new log (epoch %s, was %s): recreating topics and recovering",
                    self.bootstrap,
                    epoch,
                    self.epoch,
                )
                if self.settings.kafka_create_topics:
                    await self.ensure_topics(self.topics)
                self.epoch = epoch
                self.generation += 1
            self.reachable = True
            return self.generation

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
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.bootstrap,
            client_id=f"{self.client_id}-admin",
            request_timeout_ms=10_000,
            **security_options(self.settings),
        )
        async with asyncio.timeout(30):
            await admin.start()
            try:
                existing = set(await admin.list_topics())
                epoch_topic = self.topic(EPOCH_TOPIC)
                partitions = self.settings.kafka_partitions
                copies = self.settings.kafka_replication_factor
                missing = [
                    # The epoch is kept for ever: if retention dropped it, every service would
                    # take the same log for a new one and replay everything it retains.
                    NewTopic(name, 1, copies, topic_configs={"retention.ms": "-1"})
                    if name == epoch_topic
                    else NewTopic(name, partitions, copies)
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
        self,
        topic: str,
        *,
        key: str | bytes | None,
        value: bytes | None,
        epoch: str,
        headers: Headers = (),
    ) -> asyncio.Future[object]:
        """Queue one record on ``topic`` (unprefixed); the future resolves once the broker acknowledged it.

        ``epoch`` is the log the sender means to write to (the one it last reconciled with, which
        may be older than ``self.epoch``); the record carries it, so that what is sent on a stale
        belief is recognised as such in the new log.
        """
        if isinstance(key, str):
            key = key.encode()
        acknowledgement: asyncio.Future[object] = await self.producer.send(
            self.topic(topic), value=value, key=key, headers=_stamped(headers, epoch)
        )
        return acknowledgement

    async def publish(self, records: Sequence[Outgoing], *, epoch: str) -> list[bool]:
        """Publish ``records`` so that what lands of each partition is a prefix of them, in order.

        A produce request is written whole or not at all, but a producer that goes on after a
        failed request writes later records before the failed ones are sent again. So each
        partition's records go in as few batches as fit, each sent only when the one before it
        was acknowledged, and nothing more of a partition is sent after a failure. Returns, per
        record, whether the broker acknowledged it. ``epoch`` is stamped on every record (see ``send``).
        """
        by_partition: dict[tuple[str, int], list[int]] = defaultdict(list)
        partitions_of: dict[str, list[int]] = {}
        for index, record in enumerate(records):
            topic = self.topic(record.topic)
            if topic not in partitions_of:
                partitions_of[topic] = sorted(await self.producer.partitions_for(topic))
            partitions = partitions_of[topic]
            by_partition[(topic, partition_for(record.key, partitions))].append(index)
        acknowledged = [False] * len(records)

        async def send_in_order(topic: str, partition: int, indexes: list[int]) -> None:
            start = 0
            while start < len(indexes):
                batch = self.producer.create_batch()
                end = start
                while end < len(indexes):
                    record = records[indexes[end]]
                    headers = _stamped(record.headers, epoch)
                    if (
                        batch.append(key=record.key, value=record.value, timestamp=None, headers=headers)
                        is None
                    ):
                        break
                    end += 1
                if end == start:
                    raise KafkaError(
                        f"a record of {len(records[indexes[start]].value)} bytes does not fit a batch"
                    )
                batch.close()
                await (await self.producer.send_batch(batch, topic, partition=partition))
                for index in indexes[start:end]:
                    acknowledged[index] = True
                start = end

        results = await asyncio.gather(
            *(
                send_in_order(topic, partition, indexes)
                for (topic, partition), indexes in by_partition.items()
            ),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, Exception):
                raise result
        failures = [result for result in results if isinstance(result, Exception)]
        if failures:
            log.warning(
                "%d of %d partitions failed to take their records (%s)",
                len(failures),
                len(results),
                type(failures[0]).__name__,
            )
        return acknowledged

    def sent_to_another_log(self, headers: Headers) -> bool:
        """True if a record carries an epoch and it is not the one this bus knows as current."""
        for name, value in headers:
            if name == EPOCH_HEADER:
                return value.decode(errors="replace") != self.epoch
        return False

    async def _current_epoch(self) -> str:
        """The first record of the epoch topic, written (with the topic) if absent."""
        for _ in range(2):
            epoch = await self._read_epoch()
            if epoch is not None:
                return epoch
            await self.ensure_topics(())
            async with asyncio.timeout(30):
                await self.producer.send_and_wait(
                    self.topic(EPOCH_TOPIC), value=str(uuid.uuid4()).encode(), key=b"epoch"
                )
        epoch = await self._read_epoch()
        if epoch is None:
            raise KafkaError("could not read the broker epoch")
        return epoch

    async def _read_epoch(self) -> str | None:
        if self._epoch_reader is None:
            raise RuntimeError("bus not started")
        partition = TopicPartition(self.topic(EPOCH_TOPIC), 0)
        await self._epoch_reader.seek_to_beginning(partition)
        records = await self._epoch_reader.getmany(partition, timeout_ms=1_000, max_records=1)
        first = records.get(partition)
        return first[0].value.decode() if first and first[0].value else None

    async def stop(self) -> None:
        if self._epoch_reader is not None:
            await self._epoch_reader.stop()
            self._epoch_reader = None
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
            self._started.clear()
