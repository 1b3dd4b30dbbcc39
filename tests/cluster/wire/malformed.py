"""Malformed-but-CRC-valid record batches: the probes a hostile or broken client sends.

Each probe is a batch whose CRC32C is correct (so only record-level validation can catch
it) with the Kafka error code Produce must answer. Shared by the validator's unit tests,
the broker's raw-frame tests and the kill -9 recovery property test.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from cluster.wire.batch_builder import build_batch, encode_record
from cluster.wire.compression import compress
from cluster.wire.record_batch import CODEC_GZIP, CODEC_ZSTD, CRC_OFFSET, HEADER_SIZE, crc32c
from cluster.wire.records import encode_varint

INVALID_RECORD = 87
CORRUPT_MESSAGE = 2
UNSUPPORTED_COMPRESSION_TYPE = 76
TS = 1_700_000_000_000

# Header field offsets (see record_batch.py)
ATTRIBUTES, LAST_OFFSET_DELTA, PRODUCER_ID, BASE_SEQUENCE, RECORDS_COUNT = 21, 23, 43, 53, 57


def reseal(batch: bytearray) -> bytes:
    """Fix batch_length and the CRC after an edit, so the batch is CRC-valid again."""
    struct.pack_into(">i", batch, 8, len(batch) - 12)
    struct.pack_into(">I", batch, CRC_OFFSET, crc32c(memoryview(batch)[CRC_OFFSET + 4:]))
    return bytes(batch)


def good(n: int = 3, codec: int = 0, key: bytes | None = b"k") -> bytes:
    return build_batch([(key, b"value-%d" % i, [], TS + i) for i in range(n)], codec=codec)


def patched(field: int, fmt: str, value: int, batch: bytes | None = None) -> bytes:
    b = bytearray(batch or good())
    struct.pack_into(fmt, b, field, value)
    return reseal(b)


def with_payload(payload: bytes, count: int, last_offset_delta: int | None = None,
                 codec: int = 0) -> bytes:
    """A header from a good batch around hand-made record bytes."""
    b = bytearray(good(1)[:HEADER_SIZE])
    struct.pack_into(">i", b, LAST_OFFSET_DELTA, count - 1 if last_offset_delta is None else last_offset_delta)
    struct.pack_into(">i", b, RECORDS_COUNT, count)
    if codec:
        struct.pack_into(">h", b, ATTRIBUTES, codec)
        payload = compress(codec, payload)
    return reseal(b + payload)


def raw_record(body: bytes) -> bytes:
    return encode_varint(len(body)) + body


TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53


@dataclass(frozen=True)
class Probe:
    name: str
    batch: bytes
    code: int  # the validator's answer (Produce's too, unless produce_code says otherwise)
    # Produce's answer when it is not the validator's: transactional records in a Produce
    # without a transactional id fail the request before validation, as in Kafka.
    produce_code: int | None = None

    @property
    def produce_answer(self) -> int:
        return self.code if self.produce_code is None else self.produce_code


def probes() -> list[Probe]:
    rec = encode_record
    return [
        Probe("records_count=-1", patched(RECORDS_COUNT, ">i", -1), INVALID_RECORD),
        Probe("records_count=0", patched(RECORDS_COUNT, ">i", 0), INVALID_RECORD),
        Probe("records_count>records", patched(RECORDS_COUNT, ">i", 4,
                                               patched(LAST_OFFSET_DELTA, ">i", 3)), INVALID_RECORD),
        Probe("records_count<records", patched(RECORDS_COUNT, ">i", 2,
                                               patched(LAST_OFFSET_DELTA, ">i", 1)), INVALID_RECORD),
        Probe("count!=last_offset_delta+1", patched(RECORDS_COUNT, ">i", 2), INVALID_RECORD),
        Probe("last_offset_delta=-1", patched(LAST_OFFSET_DELTA, ">i", -1), INVALID_RECORD),
        Probe("last_offset_delta=2^31-1", patched(LAST_OFFSET_DELTA, ">i", 2**31 - 1, good(1)), INVALID_RECORD),
        Probe("overlong-varint", with_payload(b"\x80\x80\x80\x80\x80\x01" + b"\x00" * 10, 1), INVALID_RECORD),
        Probe("record-length-past-payload", with_payload(encode_varint(500) + b"\x00" * 10, 1), INVALID_RECORD),
        Probe("key-length-past-record", with_payload(raw_record(b"\x00\x00\x00" + encode_varint(50) + b"ab\x00\x00"), 1),
              INVALID_RECORD),
        Probe("key-length=-2", with_payload(raw_record(b"\x00\x00\x00" + encode_varint(-2) + b"\x02v\x00"), 1),
              INVALID_RECORD),
        Probe("negative-header-count", with_payload(raw_record(b"\x00\x00\x00\x01\x01" + encode_varint(-3)), 1),
              INVALID_RECORD),
        Probe("header-key-not-utf8", with_payload(raw_record(
            b"\x00\x00\x00\x01\x01\x02" + encode_varint(2) + b"\xff\xfe" + encode_varint(-1)), 1), INVALID_RECORD),
        Probe("trailing-bytes", with_payload(rec(0, 0, b"k", b"v") + b"\x00\x00\x00", 1), INVALID_RECORD),
        Probe("record-fields-short-of-length", with_payload(raw_record(b"\x00\x00\x00\x01\x01\x00\x00\x00"), 1),
              INVALID_RECORD),
        Probe("offset-deltas-0-0", with_payload(rec(0, 0, b"a", b"1") + rec(0, 0, b"b", b"2"), 2), INVALID_RECORD),
        Probe("control-from-client", patched(ATTRIBUTES, ">h", 0x30), INVALID_RECORD,
              TRANSACTIONAL_ID_AUTHORIZATION_FAILED),
        Probe("producer-id-without-sequence", patched(PRODUCER_ID, ">q", 7), INVALID_RECORD),
        Probe("transactional-without-producer-id", patched(ATTRIBUTES, ">h", 0x10), INVALID_RECORD,
              TRANSACTIONAL_ID_AUTHORIZATION_FAILED),
        Probe("unknown-codec-5", patched(ATTRIBUTES, ">h", 5), UNSUPPORTED_COMPRESSION_TYPE),
        Probe("gzip-garbage", reseal(bytearray(patched(ATTRIBUTES, ">h", CODEC_GZIP)[:HEADER_SIZE]) + b"not gzip at all"),
              CORRUPT_MESSAGE),
        Probe("zstd-count-lie", with_payload(rec(0, 0, b"k", b"v"), 3, codec=CODEC_ZSTD), INVALID_RECORD),
    ]
