"""The records inside a RecordBatch v2, and decoding whole batches into them.

The broker and the mirror move batches as opaque bytes (see `record_batch.py`); only the
client, tools, tests and the control-marker code ever look inside. So this decoder favours
strictness and clear errors over speed: every malformed input raises a subclass of
`record_batch.InvalidBatch`, never IndexError, UnicodeDecodeError or a hang.

Record layout (all integers zigzag varints, as in Kafka's DefaultRecord):

    length          varint   bytes after this field
    attributes      int8     unused, 0
    timestampDelta  varlong  relative to the batch's base_timestamp
    offsetDelta     varint   relative to the batch's base_offset
    keyLength       varint   -1 = null key
    key             bytes
    valueLength     varint   -1 = null value
    value           bytes
    headersCount    varint
      headerKeyLength   varint (>= 0), headerKey UTF-8
      headerValueLength varint (-1 = null), headerValue

The varint encoder lives here too, since the batch builder and this decoder must agree.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterator

from .compression import decompress
from .record_batch import (
    HEADER_SIZE,
    LOG_OVERHEAD,
    BatchHeader,
    InvalidBatch,
    compute_crc,
    iter_batches,
    read_header,
)

logger = logging.getLogger(__name__)

Header = tuple[str, bytes | None]
Buffer = bytes | bytearray | memoryview

_INT32_MIN, _INT32_MAX = -(1 << 31), (1 << 31) - 1
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
# The smallest possible record: length, attributes, ts delta, offset delta, key length,
# value length, header count — one byte each.
MIN_RECORD_SIZE = 7


class InvalidRecord(InvalidBatch):
    """A record inside an otherwise well-framed batch does not parse."""


@dataclass(frozen=True, slots=True)
class Record:
    """One record as stored: offset and timestamp relative to its batch."""

    offset_delta: int
    timestamp_delta: int
    key: bytes | None
    value: bytes | None
    headers: tuple[Header, ...] = ()
    attributes: int = 0


@dataclass(frozen=True, slots=True)
class ConsumerRecord:
    """A record with the batch's base offset and timestamp applied, as a consumer sees it.

    For LogAppendTime batches every record carries the batch's max_timestamp, which is what
    the Java consumer reports.
    """

    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[Header, ...] = ()


# ---------------------------------------------------------------------------- varints


def _encode_zigzag(n: int) -> bytes:
    z = (n << 1) ^ (n >> 63)
    out = bytearray()
    while z > 0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


_SMALL_MIN, _SMALL_MAX = -1, 1 << 14
_SMALL = [_encode_zigzag(n) for n in range(_SMALL_MIN, _SMALL_MAX)]


def encode_varint(n: int) -> bytes:
    """Zigzag varint/varlong bytes of `n` (int64 range); small values come from a table."""
    if _SMALL_MIN <= n < _SMALL_MAX:
        return _SMALL[n - _SMALL_MIN]
    if not _INT64_MIN <= n <= _INT64_MAX:
        raise ValueError(f"{n} does not fit a varlong")
    return _encode_zigzag(n)


def read_varint(buf: bytes, pos: int, end: int, max_bytes: int = 5) -> tuple[int, int]:
    """Decode a zigzag varint at `pos` not reading past `end`; returns (value, new_pos).

    max_bytes is 5 for Kafka varints (int32) and 10 for varlongs (int64); longer encodings
    and values out of range are rejected rather than silently wrapped.
    """
    result = 0
    shift = 0
    for _ in range(max_bytes):
        if pos >= end:
            raise InvalidRecord("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            value = (result >> 1) ^ -(result & 1)
            bits = 32 if max_bytes == 5 else 64
            if not -(1 << (bits - 1)) <= value < (1 << (bits - 1)):
                raise InvalidRecord(f"varint out of int{bits} range")
            return value, pos
        shift += 7
    raise InvalidRecord(f"varint longer than {max_bytes} bytes")


# ---------------------------------------------------------------------------- records


def _read_bytes(buf: bytes, pos: int, end: int, what: str) -> tuple[bytes | None, int]:
    length, pos = read_varint(buf, pos, end)
    if length == -1:
        return None, pos
    if length < -1 or pos + length > end:
        raise InvalidRecord(f"bad {what} length {length}")
    return buf[pos : pos + length], pos + length


def _read_record(buf: bytes, pos: int, limit: int) -> tuple[Record, int]:
    length, pos = read_varint(buf, pos, limit)
    end = pos + length
    if length < MIN_RECORD_SIZE - 1 or end > limit:
        raise InvalidRecord(f"bad record length {length}")
    attributes = buf[pos]
    pos += 1
    timestamp_delta, pos = read_varint(buf, pos, end, 10)
    offset_delta, pos = read_varint(buf, pos, end)
    key, pos = _read_bytes(buf, pos, end, "key")
    value, pos = _read_bytes(buf, pos, end, "value")
    count, pos = read_varint(buf, pos, end)
    if count < 0 or count > (end - pos) // 2:
        raise InvalidRecord(f"bad header count {count}")
    headers = []
    for _ in range(count):
        hkey, pos = _read_bytes(buf, pos, end, "header key")
        if hkey is None:
            raise InvalidRecord("null header key")
        try:
            name = hkey.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidRecord(f"header key is not UTF-8: {exc}") from None
        hvalue, pos = _read_bytes(buf, pos, end, "header value")
        headers.append((name, hvalue))
    if pos != end:
        raise InvalidRecord(f"record length {length} but fields end {end - pos} bytes early")
    record = Record(offset_delta, timestamp_delta, key, value, tuple(headers), attributes)
    return record, end


def iter_payload(payload: bytes, count: int) -> Iterator[Record]:
    """Records of an (uncompressed) records section that must hold exactly `count`."""
    pos = 0
    end = len(payload)
    for _ in range(count):
        if pos >= end:
            raise InvalidRecord(f"batch says {count} records but the payload ends early")
        record, pos = _read_record(payload, pos, end)
        yield record
    if pos != end:
        raise InvalidRecord(f"{end - pos} bytes after the last of {count} records")


def _checked_header(batch: Buffer, verify_crc: bool) -> BatchHeader:
    h = read_header(batch)
    if h.size != len(batch):
        raise InvalidBatch(f"batch_length says {h.size} bytes, have {len(batch)}")
    if h.batch_length < HEADER_SIZE - LOG_OVERHEAD:
        raise InvalidBatch("batch_length shorter than the header")
    if h.records_count < 0 or h.last_offset_delta < 0:
        raise InvalidBatch("negative records_count or last_offset_delta")
    if verify_crc and compute_crc(batch) != h.crc:
        raise InvalidBatch("CRC32C mismatch")
    return h


def batch_payload(batch: Buffer, header: BatchHeader) -> bytes:
    """The records section of one batch, decompressed."""
    return decompress(header.compression, memoryview(batch)[HEADER_SIZE:])


def iter_records(batch: Buffer, *, verify_crc: bool = True) -> Iterator[Record]:
    """Records of one whole batch (header checks first, then decompression if needed)."""
    # A huge records_count cannot make this loop long: each record consumes >= 7 bytes.
    h = _checked_header(batch, verify_crc)
    if h.records_count == 0 and len(batch) == HEADER_SIZE:
        # An empty batch (what Kafka's cleaner leaves to keep producer state) keeps its
        # attributes, codec included, but has no records section to decompress.
        return
    yield from iter_payload(batch_payload(batch, h), h.records_count)


def decode_records(batch: Buffer, *, verify_crc: bool = True) -> list[Record]:
    """All records of one whole batch. Raises an InvalidBatch subclass on any defect."""
    return list(iter_records(batch, verify_crc=verify_crc))


def to_consumer_records(header: BatchHeader, records: list[Record]) -> list[ConsumerRecord]:
    """Apply the batch's base offset and timestamp (or LogAppendTime) to each record."""
    base_offset = header.base_offset
    if header.log_append_time:
        ts = header.max_timestamp
        return [
            ConsumerRecord(base_offset + r.offset_delta, ts, r.key, r.value, r.headers)
            for r in records
        ]
    base_ts = header.base_timestamp
    return [
        ConsumerRecord(
            base_offset + r.offset_delta, base_ts + r.timestamp_delta, r.key, r.value, r.headers
        )
        for r in records
    ]


def decode_batch(
    batch: Buffer, *, verify_crc: bool = True
) -> tuple[BatchHeader, list[ConsumerRecord]]:
    """Header and consumer-view records of one whole batch."""
    h = _checked_header(batch, verify_crc)
    return h, to_consumer_records(h, decode_records(batch, verify_crc=False))


def decode_batches(
    buf: Buffer, *, verify_crc: bool = True, allow_partial_tail: bool = True
) -> list[tuple[BatchHeader, list[ConsumerRecord]]]:
    """Every whole batch of a fetched records blob (a cut-off last batch is skipped)."""
    mv = memoryview(buf)
    return [
        decode_batch(mv[pos : pos + h.size], verify_crc=verify_crc)
        for pos, h in iter_batches(mv, allow_partial_tail=allow_partial_tail)
    ]
