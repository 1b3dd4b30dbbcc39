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
- Transactions (a header scan of the log gives each transactional batch its outcome, see
  `TxnView`): the cleanable part ends before the first transaction still open (the last
  stable offset). Data of aborted transactions is removed and never enters the offset map;
  data of committed transactions is compacted like any other. A COMMIT/ABORT marker stays
  while any batch of its transaction remains; once none does it is treated like a
  tombstone (kept until its own delete horizon, then removed), as Kafka does, so
  read_committed consumers and producer state rebuilt from the log never see a
  transaction's data without its marker.
- A batch that cannot be read within the decompression caps (a bomb or damage written
  before every write path validated) is kept whole and stays out of the offset map, with
  a warning: cleaning goes on around it, and nothing is dropped on its account.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass, field

from cluster.wire import control
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
from cluster.wire.batch_validator import Origin, validate_batch
from cluster.wire.records import InvalidBatch, Record, decode_records

logger = logging.getLogger(__name__)

_HEADER_NO_CRC = struct.Struct(">qiib4xhiqqqhii")
_CRC = struct.Struct(">I")


def marker_commit(raw: bytes | memoryview) -> bool | None:
    """COMMIT (True) / ABORT (False) of a transactional control batch; None otherwise."""
    try:
        records = decode_records(raw, verify_crc=False)
        return control.parse_control_record(records[0])[0] if records else None
    except InvalidBatch:
        return None


@dataclass
class TxnView:
    """Transaction outcomes from one walk over the log's batch headers, in offset order.

    Feed every batch (`raw` is needed for transactional control batches only).
    """

    committed: set[int] = field(default_factory=set)  # base offsets of committed data batches
    aborted: set[int] = field(default_factory=set)  # base offsets of aborted data batches
    marker_data: dict[int, list[int]] = field(default_factory=dict)  # marker -> its data batches
    open: dict[int, list[int]] = field(default_factory=dict)  # producer id -> open txn's batches
    last_of_producer: dict[int, int] = field(default_factory=dict)  # producer id -> last batch

    def feed(self, h: BatchHeader, raw: bytes | memoryview | None = None) -> None:
        pid = h.producer_id
        if pid >= 0:
            self.last_of_producer[pid] = h.base_offset
        if not h.is_transactional:
            return
        if not h.is_control:
            self.open.setdefault(pid, []).append(h.base_offset)
            return
        commit = marker_commit(raw) if raw is not None else None
        if commit is None:
            return
        data = self.open.pop(pid, [])
        (self.committed if commit else self.aborted).update(data)
        self.marker_data[h.base_offset] = data

    @property
    def first_unstable(self) -> int | None:
        """First offset of a transaction with no marker yet: cleaning stops before it."""
        return min(v[0] for v in self.open.values()) if self.open else None

    def outcome(self, h: BatchHeader) -> str:
        """"plain", "committed", "aborted", "marker" or "unknown" (left untouched)."""
        if not h.is_transactional:
            return "unknown" if h.is_control else "plain"
        if h.is_control:
            return "marker" if h.base_offset in self.marker_data else "unknown"
        if h.base_offset in self.committed:
            return "committed"
        return "aborted" if h.base_offset in self.aborted else "unknown"


COMPACTABLE = ("plain", "committed")


@dataclass
class OffsetMap:
    """key -> offset of its latest record in the mapped (dirty) range."""

    latest: dict[bytes, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.latest)

    def add_batch(self, h: BatchHeader, raw: bytes | memoryview, outcome: str = "plain") -> None:
        """Map the keyed records of one batch; only plain and committed data counts."""
        if outcome not in COMPACTABLE or h.records_count == 0:
            return
        base = h.base_offset
        latest = self.latest
        try:
            records = decode_records(raw)
        except InvalidBatch as exc:
            # Unreadable within the caps (a bomb or damage from before every write path
            # validated): its keys stay out of the map, so nothing is removed because of it.
            logger.warning("compaction: batch at offset %d not mapped: %s", base, exc)
            return
        for r in records:
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
                 now_ms: int, horizon_ms: int | None, keep_header: bool,
                 outcome: str = "plain") -> Filtered:
    """Clean one data batch: drop superseded records, keyless records and expired tombstones.

    `horizon_ms` is the batch's delete horizon if one was stamped earlier (tombstones go
    once now_ms >= horizon_ms); `keep_header` asks for an empty batch rather than nothing
    when every record goes. `outcome` comes from TxnView.outcome: aborted data goes
    entirely; markers and unknown batches are returned as they are (the cleaner decides
    on markers).
    """
    if outcome not in COMPACTABLE and outcome != "aborted":
        return Filtered(raw, False, h.records_count, 0, 0)
    if h.records_count == 0:  # an empty batch left for a producer: goes when no longer needed
        return Filtered(raw, False, 0, 0, 0) if keep_header else Filtered(None, True, 0, 0, 0)
    if outcome == "aborted":
        data = empty_batch(h) if keep_header else None
        return Filtered(data, True, 0, h.records_count, 0)
    try:
        records = decode_records(raw)
    except InvalidBatch as exc:  # kept whole, as the offset map left it out: nothing is lost
        logger.warning("compaction: batch at offset %d kept as it is: %s", h.base_offset, exc)
        return Filtered(raw, False, h.records_count, 0, 0)
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
    rebuilt = rebuild_batch(h, kept)
    # The cleaner writes through the same validator as every other write path; a refusal
    # here is a cleaner bug, and the cleaner stops rather than write it.
    validate_batch(rebuilt, Origin.LOG)
    return Filtered(rebuilt, True, len(kept), removed, tombstones)


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
