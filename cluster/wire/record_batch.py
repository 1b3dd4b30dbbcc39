"""RecordBatch v2 (magic 2): a zero-copy view over the 61-byte batch header.

Written by hand because kio's batch helper has no compression and truncates timestamps.
The broker and the mirror move batches as bytes; this module reads and patches the header
fields they need without touching (or decompressing) the records. Layout, big-endian:

    offset size field                     covered by CRC
    0      8    base_offset               no  (assigned by the broker; patched in place)
    8      4    batch_length              no  (bytes after this field)
    12     4    partition_leader_epoch    no  (patched in place)
    16     1    magic (2)                 no
    17     4    crc (CRC32C, unsigned)    -
    21     2    attributes                yes (bits 0-2 codec, 3 timestamp type,
                                               4 transactional, 5 control)
    23     4    last_offset_delta         yes
    27     8    base_timestamp            yes
    35     8    max_timestamp             yes
    43     8    producer_id               yes
    51     2    producer_epoch            yes
    53     4    base_sequence             yes
    57     4    records_count             yes
    61     ...  records (compressed as a whole when codec != 0)

Records themselves (varint-encoded, possibly compressed) live in `records.py`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Iterator

import crc32c as _crc32c

HEADER_SIZE = 61
LOG_OVERHEAD = 12  # base_offset + batch_length: the bytes not counted in batch_length
MAGIC_OFFSET = 16
CRC_OFFSET = 17
ATTRIBUTES_OFFSET = 21

COMPRESSION_MASK = 0x07
TIMESTAMP_TYPE_BIT = 0x08
TRANSACTIONAL_BIT = 0x10
CONTROL_BIT = 0x20

CODEC_NONE, CODEC_GZIP, CODEC_SNAPPY, CODEC_LZ4, CODEC_ZSTD = range(5)

NO_PRODUCER_ID = -1
NO_SEQUENCE = -1

_HEADER = struct.Struct(">qiibIhiqqqhii")
_Q = struct.Struct(">q")
_I = struct.Struct(">i")
_UI = struct.Struct(">I")


class InvalidBatch(Exception):
    """Bytes that are not a well-formed v2 batch (the Kafka answer is CORRUPT_MESSAGE)."""


class UnsupportedMagic(InvalidBatch):
    """A v0/v1 message set (the Kafka answer is UNSUPPORTED_FOR_MESSAGE_FORMAT)."""


def crc32c(data: bytes | memoryview) -> int:
    return _crc32c.crc32c(data)


@dataclass(slots=True)
class BatchHeader:
    """Decoded header fields of one batch; `size` is the whole batch in bytes."""

    base_offset: int
    batch_length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    records_count: int

    @property
    def size(self) -> int:
        return LOG_OVERHEAD + self.batch_length

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def next_offset(self) -> int:
        return self.base_offset + self.last_offset_delta + 1

    @property
    def compression(self) -> int:
        return self.attributes & COMPRESSION_MASK

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & TRANSACTIONAL_BIT)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & CONTROL_BIT)

    @property
    def log_append_time(self) -> bool:
        return bool(self.attributes & TIMESTAMP_TYPE_BIT)

    @property
    def last_sequence(self) -> int:
        if self.base_sequence == NO_SEQUENCE:
            return NO_SEQUENCE
        return (self.base_sequence + self.last_offset_delta) & 0x7FFFFFFF


def read_header(buf: bytes | bytearray | memoryview, pos: int = 0) -> BatchHeader:
    """Decode the header at `pos`. Raises InvalidBatch if fewer than 61 bytes remain."""
    if len(buf) - pos < HEADER_SIZE:
        if len(buf) - pos >= MAGIC_OFFSET + 1 and buf[pos + MAGIC_OFFSET] != 2:
            raise UnsupportedMagic(f"magic {buf[pos + MAGIC_OFFSET]} is not supported")
        raise InvalidBatch("truncated batch header")
    h = BatchHeader(*_HEADER.unpack_from(buf, pos))
    if h.magic != 2:
        raise UnsupportedMagic(f"magic {h.magic} is not supported")
    return h


def compute_crc(batch: bytes | bytearray | memoryview) -> int:
    """CRC32C over attributes..end, as stored in the crc field."""
    return crc32c(memoryview(batch)[ATTRIBUTES_OFFSET:])


def validate(batch: bytes | bytearray | memoryview) -> BatchHeader:
    """Check one whole batch: magic, length and CRC. Returns its header."""
    h = read_header(batch)
    if h.size != len(batch):
        raise InvalidBatch(f"batch_length says {h.size} bytes, have {len(batch)}")
    if h.batch_length < HEADER_SIZE - LOG_OVERHEAD:
        raise InvalidBatch("batch_length shorter than the header")
    if h.last_offset_delta < 0 or h.records_count < 0:
        raise InvalidBatch("negative last_offset_delta or records_count")
    if compute_crc(batch) != h.crc:
        raise InvalidBatch("CRC32C mismatch")
    return h


def iter_batches(
    buf: bytes | bytearray | memoryview, *, allow_partial_tail: bool = True
) -> Iterator[tuple[int, BatchHeader]]:
    """Yield (position, header) for each whole batch in a concatenation of batches.

    Fetch responses may end with a partial batch (max_bytes cut it): with
    allow_partial_tail that tail is silently skipped, otherwise InvalidBatch is raised.
    """
    pos = 0
    end = len(buf)
    while pos < end:
        if end - pos < HEADER_SIZE:
            if allow_partial_tail:
                return
            raise InvalidBatch("truncated batch at the end of the buffer")
        h = read_header(buf, pos)
        if h.batch_length < HEADER_SIZE - LOG_OVERHEAD:
            raise InvalidBatch("batch_length shorter than the header")
        if pos + h.size > end:
            if allow_partial_tail:
                return
            raise InvalidBatch("truncated batch at the end of the buffer")
        yield pos, h
        pos += h.size


def split_batches(buf: bytes | bytearray | memoryview) -> list[memoryview]:
    """Whole, CRC-checked batches of a produce payload, as views. Raises InvalidBatch."""
    mv = memoryview(buf)
    out = []
    for pos, h in iter_batches(mv, allow_partial_tail=False):
        view = mv[pos : pos + h.size]
        if compute_crc(view) != h.crc:
            raise InvalidBatch("CRC32C mismatch")
        out.append(view)
    if not out:
        raise InvalidBatch("no record batch in the payload")
    return out


def set_base_offset(batch: bytearray | memoryview, base_offset: int, pos: int = 0) -> None:
    """Patch base_offset in place (outside the CRC: no recomputation needed)."""
    _Q.pack_into(batch, pos, base_offset)


def set_leader_epoch(batch: bytearray | memoryview, epoch: int, pos: int = 0) -> None:
    """Patch partition_leader_epoch in place (outside the CRC)."""
    _I.pack_into(batch, pos + 12, epoch)


def set_max_timestamp_log_append(batch: bytearray | memoryview, ts: int, pos: int = 0) -> None:
    """Set LogAppendTime: timestamp-type bit, base and max timestamp, then the CRC.

    This is the only header change inside the CRC the broker ever makes, and only for topics
    with message.timestamp.type=LogAppendTime.
    """
    mv = memoryview(batch)[pos:]
    (attrs,) = struct.unpack_from(">h", mv, ATTRIBUTES_OFFSET)
    struct.pack_into(">h", mv, ATTRIBUTES_OFFSET, attrs | TIMESTAMP_TYPE_BIT)
    _Q.pack_into(mv, 27, ts)
    _Q.pack_into(mv, 35, ts)
    (length,) = _I.unpack_from(mv, 8)
    _UI.pack_into(mv, CRC_OFFSET, crc32c(mv[ATTRIBUTES_OFFSET : LOG_OVERHEAD + length]))
