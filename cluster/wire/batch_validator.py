"""One validator for every batch the broker writes: Produce, DcMirrorAppend, recovery, cleaner.

The rules are Kafka's LogValidator's (plus two of our own, marked below), chosen by where
a batch comes from:

* CLIENT (Produce): records_count > 0 and equal to last_offset_delta + 1; no control
  batches; an idempotent batch (producer id set) has a sequence; a transactional batch
  has a producer id; record offset deltas are 0, 1, 2... (ours: Kafka would rebuild such
  a batch; we refuse it, since we never rewrite client bytes).
* MIRROR (DcMirrorAppend) and LOG (recovery, compaction output): the batch may come from
  a compacted log, so records_count <= last_offset_delta + 1 and offset deltas only rise;
  control batches must be one well-formed COMMIT/ABORT marker; base offset and last
  offset must fit an int64 (the offsets are kept, not assigned).

Every origin walks all records (record_walk.py), for compressed batches after bounded
decompression: a batch inflating past `Limits.decompress_limit` or holding more than
`Limits.max_records` records is refused before it costs more (ours: Kafka has no caps and
can be made to allocate gigabytes). Since LOG is the loosest origin and recovery uses it,
recovery accepts every batch Produce or DcMirrorAppend accepted. Recovery applies the
header rules (`check_header`) after the CRC: record structure was proven when the batch
was written and the CRC proves it unchanged, so recovery need not inflate anything. The
record-count cap is a write-time cap only: data already in a log is never refused by it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum

from .compression import (
    CODEC_NAMES,
    DECOMPRESS_CEILING,
    CorruptCompressedData,
    DecompressionLimit,
    UnsupportedCodec,
    decompressed,
)
from .control import NotATransactionMarker, parse_control_record
from .record_batch import (
    CODEC_NONE,
    HEADER_SIZE,
    LOG_OVERHEAD,
    BatchHeader,
    InvalidBatch,
    compute_crc,
    read_header,
)
from .record_walk import RecordDefect, walk
from .records import decode_records

logger = logging.getLogger(__name__)

INVALID_RECORD = 87
CORRUPT_MESSAGE = 2
UNSUPPORTED_COMPRESSION_TYPE = 76

_INT64_MAX = (1 << 63) - 1
_INT64_MIN = -(1 << 63)
MIN_RECORD_SIZE = 7


class Origin(Enum):
    CLIENT = "client"
    MIRROR = "mirror"
    LOG = "log"


@dataclass(frozen=True, slots=True)
class Limits:
    """Caps on the work one batch may cause. The defaults fit any real producer's batches."""

    decompress_ratio: int = 64  # a batch may inflate to this many times its size...
    decompress_floor: int = 8 << 20  # ...or to this much, whichever is more...
    decompress_ceiling: int = DECOMPRESS_CEILING  # ...but never past this
    # Records are walked in C, but recompression and compaction build an object per
    # record: this bounds their memory (~50 MB) and time. Real producers stay far below.
    max_records: int = 1 << 18

    def decompress_limit(self, compressed_bytes: int) -> int:
        wanted = max(self.decompress_ratio * compressed_bytes, self.decompress_floor)
        return min(wanted, self.decompress_ceiling, DECOMPRESS_CEILING)


DEFAULT_LIMITS = Limits()


class BatchRefused(InvalidBatch):
    """A batch the broker must not write, with the Kafka error code to answer."""

    def __init__(self, code: int, message: str, record_index: int | None = None,
                 *, limit_hit: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.record_index = record_index
        self.limit_hit = limit_hit  # refused only by a size cap (a larger cap may pass it)


@dataclass(frozen=True, slots=True)
class CheckedBatch:
    """What validation learnt, so later checks need not decode again."""

    header: BatchHeader
    keyless: int  # records with a null key
    first_keyless: int  # index of the first of them, -1 if none
    min_timestamp: int  # record timestamps (CreateTime); -1 for an empty batch
    max_timestamp: int


def _invalid(message: str, index: int | None = None) -> BatchRefused:
    return BatchRefused(INVALID_RECORD, message, index)


def check_header(h: BatchHeader, size: int, origin: Origin, limits: Limits = DEFAULT_LIMITS) -> None:
    """Header-only rules (no record bytes read). Raises BatchRefused."""
    if h.size != size:
        raise BatchRefused(CORRUPT_MESSAGE, f"batch_length says {h.size} bytes, have {size}")
    if h.batch_length < HEADER_SIZE - LOG_OVERHEAD:
        raise BatchRefused(CORRUPT_MESSAGE, "batch_length shorter than the header")
    if h.compression not in CODEC_NAMES:
        raise BatchRefused(UNSUPPORTED_COMPRESSION_TYPE, f"unknown compression codec {h.compression}")
    if h.last_offset_delta < 0:
        raise _invalid(f"Batch has an invalid offset range: last_offset_delta {h.last_offset_delta}")
    if h.records_count < 0:
        raise _invalid(f"Invalid reported count for record batch: {h.records_count}")
    if h.records_count > limits.max_records and origin is not Origin.LOG:
        raise _invalid(f"batch holds {h.records_count} records, more than the broker's limit of "
                       f"{limits.max_records}")
    if origin is Origin.CLIENT:
        if h.records_count == 0:
            raise _invalid("Invalid reported count for record batch: 0")
        if h.records_count != h.last_offset_delta + 1:
            raise _invalid(f"Inconsistent batch offset range [0, {h.last_offset_delta}] and count "
                           f"of records {h.records_count}")
        if h.is_control:
            raise _invalid("Clients are not allowed to write control records")
        if h.producer_id >= 0 and h.base_sequence < 0:
            raise _invalid(f"Invalid sequence number {h.base_sequence} in record batch with "
                           f"producerId {h.producer_id}")
    else:
        if h.records_count > h.last_offset_delta + 1:
            raise _invalid(f"{h.records_count} records cannot fit offset range "
                           f"[{h.base_offset}, {h.base_offset + h.last_offset_delta}]")
        if h.base_offset < 0 or h.base_offset + h.last_offset_delta > _INT64_MAX:
            raise _invalid(f"offsets [{h.base_offset}, {h.base_offset + h.last_offset_delta}] "
                           "do not fit a signed 64-bit offset")
        if h.is_control and (h.records_count != 1 or not h.is_transactional):
            raise _invalid("a control batch must be transactional and hold exactly one record")
    if h.is_transactional and h.producer_id < 0:
        raise _invalid("a transactional batch must carry a producer id")


def validate_batch(
    batch: bytes | bytearray | memoryview,
    origin: Origin,
    limits: Limits = DEFAULT_LIMITS,
    *,
    verify_crc: bool = True,
) -> CheckedBatch:
    """Check one whole batch, records included. Raises BatchRefused (an InvalidBatch)."""
    mv = memoryview(batch)
    try:
        h = read_header(mv)
    except InvalidBatch as exc:
        raise BatchRefused(CORRUPT_MESSAGE, str(exc)) from None
    check_header(h, len(mv), origin, limits)
    if verify_crc and compute_crc(mv) != h.crc:
        raise BatchRefused(CORRUPT_MESSAGE, "CRC32C mismatch")
    payload = mv[HEADER_SIZE:]
    count = h.records_count
    sequential = origin is Origin.CLIENT
    try:
        if count == 0 and len(payload) == 0:
            walked = None
        elif h.compression == CODEC_NONE:
            walked = walk(payload, count, sequential, h.last_offset_delta)
        else:
            limit = limits.decompress_limit(len(payload))
            if count > limit // MIN_RECORD_SIZE:
                raise BatchRefused(INVALID_RECORD, f"{count} records cannot fit the {limit} bytes "
                                   "this batch may inflate to", limit_hit=True)
            with decompressed(h.compression, payload, limit) as records:
                walked = walk(records, count, sequential, h.last_offset_delta)
    except RecordDefect as exc:
        raise _invalid(str(exc), exc.record_index) from None
    except DecompressionLimit as exc:
        raise BatchRefused(INVALID_RECORD, f"{exc} (the limit for a {len(payload)}-byte batch)",
                           limit_hit=True) from None
    except (CorruptCompressedData, UnsupportedCodec) as exc:
        raise BatchRefused(CORRUPT_MESSAGE, str(exc)) from None
    if walked is None:
        return CheckedBatch(h, 0, -1, -1, -1)
    lo = h.base_timestamp + walked.min_timestamp_delta
    hi = h.base_timestamp + walked.max_timestamp_delta
    if not (_INT64_MIN <= lo and hi <= _INT64_MAX):
        raise _invalid("a record timestamp does not fit a signed 64-bit integer")
    if h.is_control:
        _check_marker(mv)
    return CheckedBatch(h, walked.keyless, walked.first_keyless, lo, hi)


def _check_marker(batch: memoryview) -> None:
    # One small record, already walked and bounded: decoding it costs nothing.
    try:
        parse_control_record(decode_records(batch, verify_crc=False)[0])
    except NotATransactionMarker as exc:
        raise _invalid(f"control batch: {exc}", 0) from None
