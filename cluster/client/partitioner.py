"""Java-compatible murmur2 key partitioning, so keyed records land where Java clients,
kafka-python and aiokafka would put them (librdkafka needs partitioner=murmur2_random).

Mirrors org.apache.kafka.common.utils.Utils.murmur2 bit for bit: 32-bit arithmetic,
little-endian 4-byte blocks, seed 0x9747b28c, tail bytes masked with 0xff, and the result
returned as Java's signed int.
"""

from __future__ import annotations

_M = 0x5BD1E995
_SEED = 0x9747B28C
_MASK = 0xFFFFFFFF


def _to_signed(x: int) -> int:
    return x - 0x100000000 if x & 0x80000000 else x


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 hash of `data` as a signed 32-bit int (as Java returns it)."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    blocks = length // 4
    for i in range(blocks):
        k = int.from_bytes(data[4 * i : 4 * i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = (h * _M) & _MASK
        h ^= k
    tail = blocks * 4
    rest = length & 3
    if rest == 3:
        h ^= data[tail + 2] << 16
    if rest >= 2:
        h ^= data[tail + 1] << 8
    if rest >= 1:
        h ^= data[tail]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return _to_signed(h)


def partition_for_key(key: bytes, num_partitions: int) -> int:
    """The partition Java's default partitioner picks for a non-null key."""
    if num_partitions <= 0:
        raise ValueError("num_partitions must be positive")
    return (murmur2(key) & 0x7FFFFFFF) % num_partitions
