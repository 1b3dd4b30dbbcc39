"""The zero-copy header view: reading, validating, splitting and patching batches."""

from __future__ import annotations

import struct

import pytest
from aiokafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder
from hypothesis import given, settings
from hypothesis import strategies as st

from cluster.wire.batch_builder import build_batch
from cluster.wire.record_batch import (
    HEADER_SIZE,
    BatchHeader,
    InvalidBatch,
    UnsupportedMagic,
    compute_crc,
    iter_batches,
    read_header,
    set_base_offset,
    set_leader_epoch,
    set_max_timestamp_log_append,
    split_batches,
    validate,
)
from cluster.wire.records import decode_batch


def aiokafka_batch(n: int = 3, codec: int = 0) -> bytes:
    """A batch written by a third party, so header reading is not checked against itself."""
    b = DefaultRecordBatchBuilder(
        magic=2, compression_type=codec, is_transactional=0,
        producer_id=11, producer_epoch=2, base_sequence=40, batch_size=1 << 20,
    )
    for i in range(n):
        b.append(i, timestamp=5_000 + 10 * i, key=b"k", value=b"v%d" % i, headers=[])
    return bytes(b.build())


def test_read_header_of_a_peer_batch() -> None:
    data = aiokafka_batch(3, codec=2)
    h = read_header(data)
    assert h.magic == 2 and h.size == len(data) and h.batch_length == len(data) - 12
    assert (h.base_offset, h.last_offset_delta, h.records_count) == (0, 2, 3)
    assert (h.last_offset, h.next_offset) == (2, 3)
    assert (h.base_timestamp, h.max_timestamp) == (5_000, 5_020)
    assert (h.producer_id, h.producer_epoch, h.base_sequence, h.last_sequence) == (11, 2, 40, 42)
    assert h.compression == 2 and not h.is_control and not h.is_transactional
    assert h.crc == DefaultRecordBatch(data).crc == compute_crc(data)


def test_read_header_at_an_offset() -> None:
    data = b"\x00" * 7 + aiokafka_batch(1)
    assert read_header(data, 7).records_count == 1


def test_last_sequence_wraps_like_kafka() -> None:
    h = read_header(build_batch([(None, b"a", None, 0)] * 3, producer_id=1, producer_epoch=0,
                                base_sequence=2**31 - 2))
    assert h.last_sequence == 0  # MAX-2, MAX-1, MAX ... then 0
    assert read_header(build_batch([(None, b"a", None, 0)])).last_sequence == -1


@pytest.mark.parametrize("magic", [0, 1])
def test_old_message_formats_are_unsupported(magic: int) -> None:
    legacy = struct.pack(">qi", 0, 30) + struct.pack(">Ibb", 0, magic, 0) + b"\x00" * 30
    with pytest.raises(UnsupportedMagic):
        read_header(legacy)
    with pytest.raises(UnsupportedMagic):  # even when shorter than a v2 header
        read_header(legacy[:20])


def test_truncated_header() -> None:
    with pytest.raises(InvalidBatch, match="truncated"):
        read_header(aiokafka_batch()[:HEADER_SIZE - 1])
    with pytest.raises(InvalidBatch):
        read_header(b"")


def test_validate_catches_every_header_defect() -> None:
    good = aiokafka_batch()
    assert isinstance(validate(good), BatchHeader)
    with pytest.raises(InvalidBatch, match="CRC"):
        validate(good[:-1] + bytes([good[-1] ^ 0x40]))
    with pytest.raises(InvalidBatch, match="batch_length"):
        validate(good[:-1])
    short = bytearray(good[:HEADER_SIZE])
    struct.pack_into(">i", short, 8, 40)  # claims fewer bytes than a header
    with pytest.raises(InvalidBatch):
        validate(bytes(short[:52]))
    negative = bytearray(good)
    struct.pack_into(">i", negative, 57, -1)
    with pytest.raises(InvalidBatch, match="negative"):
        validate(negative)


def test_iter_batches_and_partial_tail() -> None:
    a = build_batch([(None, b"a", None, 1)], base_offset=0)
    b = aiokafka_batch(2)
    blob = a + b + b[:HEADER_SIZE + 3]
    assert [(pos, h.records_count) for pos, h in iter_batches(blob)] == [(0, 1), (len(a), 2)]
    with pytest.raises(InvalidBatch, match="truncated"):
        list(iter_batches(blob, allow_partial_tail=False))
    with pytest.raises(InvalidBatch, match="truncated"):
        list(iter_batches(a + b[:10], allow_partial_tail=False))
    assert list(iter_batches(b"")) == []


def test_iter_batches_refuses_a_length_that_would_loop() -> None:
    bad = bytearray(build_batch([(None, b"a", None, 1)]))
    struct.pack_into(">i", bad, 8, 0)
    with pytest.raises(InvalidBatch, match="shorter"):
        list(iter_batches(bad))


def test_split_batches_checks_crcs() -> None:
    a = build_batch([(None, b"a", None, 1)])
    b = aiokafka_batch(2, codec=4)
    views = split_batches(a + b)
    assert [bytes(v) for v in views] == [a, b]
    with pytest.raises(InvalidBatch, match="CRC"):
        split_batches(a + b[:-1] + bytes([b[-1] ^ 1]))
    with pytest.raises(InvalidBatch, match="no record batch"):
        split_batches(b"")
    with pytest.raises(InvalidBatch):
        split_batches(a + b[:-1])


def test_patching_offset_and_epoch_keeps_the_crc() -> None:
    blob = bytearray(build_batch([(None, b"x", None, 1)]) + aiokafka_batch(2))
    second = read_header(blob).size
    set_base_offset(blob, 1_000, second)
    set_leader_epoch(blob, 12, second)
    h = validate(memoryview(blob)[second:])
    assert (h.base_offset, h.partition_leader_epoch) == (1_000, 12)
    assert [r.offset for r in decode_batch(memoryview(blob)[second:])[1]] == [1_000, 1_001]
    assert read_header(blob).base_offset == 0  # the first batch is untouched


def test_log_append_time_patch_recomputes_the_crc() -> None:
    data = bytearray(aiokafka_batch(3))
    set_max_timestamp_log_append(data, 123_456)
    h = validate(data)
    assert h.log_append_time and h.base_timestamp == h.max_timestamp == 123_456
    theirs = DefaultRecordBatch(bytes(data))
    assert theirs.validate_crc()
    assert [r.timestamp for r in theirs] == [123_456] * 3  # consumers see the append time


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_only_raise_invalid_batch(data: bytes) -> None:
    for call in (lambda: read_header(data), lambda: validate(data),
                 lambda: list(iter_batches(data)), lambda: split_batches(data)):
        try:
            call()
        except InvalidBatch:
            pass
