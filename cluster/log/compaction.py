"""Log compaction, batch level: which records a cleaning pass keeps, and the bytes it writes.

Kafka's cleaner (LogCleaner + MemoryRecords.filterTo) in a pure form, so every rule is
testable on plain bytes without files or sockets. `cleaner.py` drives it over segments.

Rules (Kafka's, with the simplifications stated):
- An offset map (key -> latest offset) is built over the *dirty* part of the log; a record
  is superseded, and dropped, when the map holds a later offset for its key.
- A tombstone (null value) that is the latest for its key is kept until its batch's delete
  horizon passes. The horizon is `now + delete.retention.ms`, stamped the first time a
  cleaning pass keeps the batch with a tombstone in it (KIP-534's rule). Kafka stores the
  horizon in the batch (base timestamp + attribute bit 6); we keep it beside the log in the
  cleaner checkpoint, keyed by the batch's base offset (which compaction never changes), so
  batch timestamps stay exactly as produced.
- Records without a key cannot be compacted; Kafka's cleaner drops them, and so do we.
- Offsets are never rewritten. A batch that loses records is rebuilt with the same base
  offset, *the same last offset delta* (the producer's last sequence is derived from it),
  producer id/epoch, base sequence, attributes, base timestamp, per-record timestamp deltas
  and codec; only max timestamp is recomputed (CreateTime) and the records recompressed.
  A batch that loses nothing is copied byte for byte.
- A batch that loses every record disappears, unless it is the last batch of its producer:
  then it stays as an empty batch (header only, as Kafka does), so producer state rebuilt
  from the log still knows the producer's last sequence.
- Transactions: transactional data batches and control batches are copied untouched and
  feed nothing into the offset map (an aborted value must never supersede a committed
  one). Kafka additionally removes aborted data and, later, markers; we do not yet.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass, field

from cluster.wire.batch_builder import encode_record
from cluster.wire.compression import compress
from cluster.wire.record_batch import (
    COMPRESSION_MASK,
    CRC_OFFSET,
    HEADER_SIZE,
    LOG_OVERHEAD,
    BatchHeader,
    crc32c,
    read_header,
)
from cluster.wire.records import Record, decode_records

logger = logging.getLogger(__name__)

_HEADER_NO_CRC = struct.Struct(">qiib4xhiqqqhii")
_CRC = struct.Struct(">I")


def is_compactable(h: BatchHeader) -> bool:
    """Batches whose records the cleaner may look at and remove."""
    return not h.is_transactional and not h.is_control


@dataclass
class OffsetMap:
    """key -> offset of its latest record in the mapped (dirty) range."""

    latest: dict[bytes, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.latest)

    def add_batch(self, h: BatchHeader, raw: bytes | memoryview) -> None:
        """Map the keyed records of one batch (transactional and control batches add nothing)."""
        if not is_compactable(h) or h.records_count == 0:
            return
        base = h.base_offset
        latest = self.latest
        for r in decode_records(raw):
            if r.key is not None:
                latest[bytes(r.key)] = base + r.offset_delta


@dataclass(frozen=True)
class Filtered:
    """Outcome of cleaning one batch."""

    data: bytes | memoryview | None  # what to write; None = the batch disappears
    changed: bool  # False: `data` is the original bytes
    kept: int  # records kept
    removed: int  # records removed
    tombstones: int  # tombstones kept (the batch then needs a delete horizon)


def filter_batch(h: BatchHeader, raw: bytes | memoryview, offset_map: OffsetMap, *,
                 now_ms: int, horizon_ms: int | None, keep_header: bool) -> Filtered:
    """Clean one batch: drop superseded records, keyless records and expired tombstones.

    `horizon_ms` is the batch's delete horizon if one was stamped earlier (tombstones go
    once now_ms >= horizon_ms); `keep_header` asks for an empty batch rather than nothing
    when every record goes.
    """
    if not is_compactable(h) or h.records_count == 0:
        return Filtered(raw, False, h.records_count, 0, 0)
    records = decode_records(raw)
    expired = horizon_ms is not None and now_ms >= horizon_ms
    latest = offset_map.latest
    kept: list[Record] = []
    tombstones = 0
    base = h.base_offset
    for r in records:
        if r.key is None:
            continue
        newer = latest.get(bytes(r.key))
        if newer is not None and newer > base + r.offset_delta:
            continue
        if r.value is None:
            if expired:
                continue
            tombstones += 1
        kept.append(r)
    removed = len(records) - len(kept)
    if not removed:
        return Filtered(raw, False, len(kept), 0, tombstones)
    if not kept:
        data = empty_batch(h) if keep_header else None
        return Filtered(data, True, 0, removed, 0)
    return Filtered(rebuild_batch(h, kept), True, len(kept), removed, tombstones)


def _pack(h: BatchHeader, attributes: int, max_timestamp: int, count: int, payload: bytes) -> bytes:
    buf = bytearray(HEADER_SIZE)
    buf += payload
    _HEADER_NO_CRC.pack_into(
        buf, 0, h.base_offset, len(buf) - LOG_OVERHEAD, h.partition_leader_epoch, 2, attributes,
        h.last_offset_delta, h.base_timestamp, max_timestamp, h.producer_id, h.producer_epoch,
        h.base_sequence, count,
    )
    _CRC.pack_into(buf, CRC_OFFSET, crc32c(memoryview(buf)[CRC_OFFSET + 4:]))
    return bytes(buf)


def rebuild_batch(h: BatchHeader, kept: list[Record]) -> bytes:
    """A batch holding `kept` (a non-empty subset of h's records) with h's identity.

    Base offset, last offset delta, timestamps base and deltas, producer fields, attributes
    and codec are h's; the payload is recompressed with h's own codec.
    """
    payload = b"".join(
        encode_record(r.offset_delta, r.timestamp_delta, r.key, r.value, r.headers) for r in kept
    )
    codec = h.compression
    if codec:
        payload = compress(codec, payload)
    if h.log_append_time:
        max_ts = h.max_timestamp
    else:
        max_ts = max(h.base_timestamp + r.timestamp_delta for r in kept)
    return _pack(h, h.attributes, max_ts, len(kept), payload)


def empty_batch(h: BatchHeader) -> bytes:
    """The header-only batch Kafka leaves for a producer's emptied last batch (codec none)."""
    return _pack(h, h.attributes & ~COMPRESSION_MASK, h.max_timestamp, 0, b"")


def has_keyless_record(batch: bytes | memoryview) -> bool:
    """True if a (non-control) batch holds a record with a null key: a compacted topic refuses it."""
    h = read_header(batch)
    if h.is_control:
        return False
    return any(r.key is None for r in decode_records(batch))
