"""The relay's partitioner picks exactly the partition Kafka's default partitioner (murmur2) picks."""

from __future__ import annotations

import uuid

from aiokafka.partitioner import DefaultPartitioner, murmur2
from hypothesis import given, settings
from hypothesis import strategies as st

from shared import bus

KAFKA = DefaultPartitioner()


@settings(max_examples=2_000, deadline=None)
@given(key=st.binary(max_size=80), count=st.integers(min_value=1, max_value=256))
def test_any_key_goes_where_kafkas_default_partitioner_puts_it(key: bytes, count: int) -> None:
    partitions = list(range(count))
    assert bus.murmur2(key) == murmur2(key)
    assert bus.partition_for(key, partitions) == KAFKA(key, partitions, partitions)


def test_customer_keys_go_where_kafkas_default_partitioner_puts_them_cached_or_not() -> None:
    keys = [str(uuid.uuid4()).encode() for _ in range(20_000)]
    for partitions in ([0], list(range(3)), list(range(12)), list(range(64))):
        bus.murmur2.cache_clear()
        first = [bus.partition_for(key, partitions) for key in keys]
        again = [bus.partition_for(key, partitions) for key in keys]  # from the cache
        assert first == again == [KAFKA(key, partitions, partitions) for key in keys]
    # Kafka's own test vectors (org.apache.kafka.common.utils.UtilsTest.testMurmur2).
    vectors = {b"21": -973932308, b"foobar": -790332482, b"a-little-bit-long-string": -985981536}
    for key, signed in vectors.items():
        assert bus.murmur2(key) == signed & 0xFFFFFFFF


def test_a_record_without_a_key_goes_to_one_of_the_partitions() -> None:
    assert bus.partition_for(None, [0, 1, 2]) in {0, 1, 2}
