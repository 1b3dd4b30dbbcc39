"""Structural check of a records section without building a Python object per record.

Every write path (Produce, DcMirrorAppend, recovery, compaction output) must prove that a
batch's records parse exactly as its header says, as Kafka's LogValidator does, or the log
may hold bytes that readers and recovery later choke on. `walk` checks, per record: the
length varint and that the fields fill exactly that length; varints in range and not
overlong; the offset delta (its position for client batches, rising within
last_offset_delta for mirrored or compacted ones); key, value and header lengths inside
the record; header keys UTF-8 (our decoder requires it); and that the records end exactly
where the payload does.

The loop runs in C (`_record_walk.c`, built at install) because the Python version below
costs ~1.5 us per record. The Python version implements the same rules; it is the fallback
when no compiler was available and the oracle the C walker is tested against.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

logger = logging.getLogger(__name__)

Buffer = bytes | bytearray | memoryview


@dataclass(frozen=True, slots=True)
class WalkResult:
    keyless: int  # records with a null key (compacted topics refuse them)
    first_keyless: int  # index of the first of them, -1 if none
    min_timestamp_delta: int
    max_timestamp_delta: int


class RecordDefect(ValueError):
    """The first record (by index in the batch) that does not parse, and why."""

    def __init__(self, message: str, record_index: int) -> None:
        super().__init__(message, record_index)
        self.message = message
        self.record_index = record_index

    def __str__(self) -> str:
        return f"record {self.record_index}: {self.message}"


def _varint(buf: bytes, pos: int, end: int, max_bytes: int, index: int) -> tuple[int, int]:
    result = 0
    shift = 0
    for _ in range(max_bytes):
        if pos >= end:
            raise RecordDefect("truncated varint", index)
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            if max_bytes == 5 and result > 0xFFFFFFFF:
                raise RecordDefect("varint out of int32 range", index)
            return (result >> 1) ^ -(result & 1), pos
        shift += 7
    raise RecordDefect("varint longer than its type allows", index)


def _utf8_ok(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def walk_python(buf: Buffer, count: int, sequential: bool, last_offset_delta: int) -> WalkResult:
    """The reference walker: same rules and messages as the C one."""
    data = bytes(buf)
    pos, end = 0, len(data)
    prev = -1
    keyless = 0
    first_keyless = -1
    min_ts = max_ts = 0
    for index in range(count):
        if pos >= end:
            raise RecordDefect("batch says more records than its payload holds (premature end)", index)
        length, pos = _varint(data, pos, end, 5, index)
        if length < 6 or length > end - pos:
            raise RecordDefect("invalid record size", index)
        rend = pos + length
        p = pos + 1  # attributes: unused, any value (as Kafka)
        ts, p = _varint(data, p, rend, 10, index)
        od, p = _varint(data, p, rend, 5, index)
        if sequential:
            if od != index:
                raise RecordDefect("record offset delta is not its position in the batch", index)
        elif od <= prev or od > last_offset_delta:
            raise RecordDefect("record offset deltas must rise and stay within last_offset_delta", index)
        prev = od
        if index == 0 or ts < min_ts:
            min_ts = ts
        if index == 0 or ts > max_ts:
            max_ts = ts
        klen, p = _varint(data, p, rend, 5, index)
        if klen < -1 or klen > rend - p:
            raise RecordDefect("invalid key length", index)
        if klen == -1:
            if keyless == 0:
                first_keyless = index
            keyless += 1
        else:
            p += klen
        vlen, p = _varint(data, p, rend, 5, index)
        if vlen < -1 or vlen > rend - p:
            raise RecordDefect("invalid value length", index)
        if vlen > 0:
            p += vlen
        nh, p = _varint(data, p, rend, 5, index)
        if nh < 0 or nh > (rend - p) // 2:
            raise RecordDefect("invalid number of record headers", index)
        for _ in range(nh):
            hk, p = _varint(data, p, rend, 5, index)
            if hk < 0 or hk > rend - p:
                raise RecordDefect("invalid header key length", index)
            if not _utf8_ok(data[p : p + hk]):
                raise RecordDefect("header key is not UTF-8", index)
            p += hk
            hv, p = _varint(data, p, rend, 5, index)
            if hv < -1 or hv > rend - p:
                raise RecordDefect("invalid header value length", index)
            if hv > 0:
                p += hv
        if p != rend:
            raise RecordDefect("record size does not match its fields", index)
        pos = rend
    if pos != end:
        raise RecordDefect("records still remaining after the declared record count", count)
    return WalkResult(keyless, first_keyless, min_ts, max_ts)


try:
    from cluster.wire import _record_walk as _c
except ImportError:  # no compiler at install time
    _c = None
    logger.warning(
        "the C record walker is not built (reinstall with a C compiler: pip install -e .);"
        " using the pure-Python walker, which slows produce of small records"
    )

ACCELERATED = _c is not None


def walk(buf: Buffer, count: int, sequential: bool, last_offset_delta: int) -> WalkResult:
    """Check `count` records filling `buf` exactly. Raises RecordDefect on the first defect."""
    if _c is None:
        return walk_python(buf, count, sequential, last_offset_delta)
    try:
        keyless, first, lo, hi = _c.walk(buf, count, sequential, last_offset_delta)
    except ValueError as exc:
        message, index = exc.args
        raise RecordDefect(message, index) from None
    return WalkResult(keyless, first, lo, hi)
