"""murmur2 must match Java bit for bit, or keyed records land on different partitions."""

from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.partitioner.default import murmur2 as kafka_python_murmur2

from cluster.client.partitioner import murmur2, partition_for_key

# From apache/kafka clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java
JAVA_VECTORS = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


def test_java_test_vectors() -> None:
    for data, expected in JAVA_VECTORS.items():
        assert murmur2(data) == expected, data


def _kafka_python_signed(data: bytes) -> int:
    h = kafka_python_murmur2(data) & 0xFFFFFFFF
    return h - (1 << 32) if h & 0x80000000 else h


@settings(max_examples=1000)
@given(st.binary(max_size=64))
def test_matches_kafka_python(data: bytes) -> None:
    assert murmur2(data) == _kafka_python_signed(data)


@given(st.binary(max_size=64), st.integers(min_value=1, max_value=1000))
def test_partition_for_key_in_range_and_like_java(key: bytes, n: int) -> None:
    p = partition_for_key(key, n)
    assert 0 <= p < n
    assert p == (_kafka_python_signed(key) & 0x7FFFFFFF) % n
