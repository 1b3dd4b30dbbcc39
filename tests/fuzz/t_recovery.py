"""Fuzz target `recovery`: a segment file of arbitrary bytes, opened after an unclean shutdown.

Each input becomes the only segment (base offset 0) of a partition directory with no
indexes and no clean-shutdown marker, and `PartitionLog.open` recovers it after every
batch's CRC32C is recomputed over the length its header claims, so mutations reach the
header rules behind the CRC; the bytes as they are go through `validated_scan` alone. Allowed: a log whose segment is a prefix of the input (recovery
only ever truncates), in which every batch passes `check_header(..., Origin.LOG)` and its
CRC with offsets rising, whose log end offset is the last batch's next offset, and whose
read from the start returns exactly the segment's bytes. Any exception is a crash: bytes
on disk must never stop a partition from opening.
"""

from __future__ import annotations

import os
import shutil
import struct
import tempfile
from functools import cache
from pathlib import Path

from cluster.log import LogConfig, PartitionLog
from cluster.log.scan import MAX_RELATIVE_OFFSET, validated_scan
from cluster.wire.batch_validator import BatchRefused, Origin, check_header
from cluster.wire.record_batch import CRC_OFFSET, HEADER_SIZE, InvalidBatch, compute_crc, crc32c, read_header

from .engine import Target
from .t_batch import seeds as batch_seeds

SEGMENT = "00000000000000000000.log"
_CONFIG = LogConfig(fsync="never", index_interval_bytes=256)


class BadRecovery(AssertionError):
    """Recovery left bytes that are not a valid, rising prefix of the input."""


def _root() -> Path:
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix="fuzz-recovery-", dir=base))


_dir: Path | None = None


def _partition_dir() -> Path:
    global _dir
    if _dir is None:
        _dir = _root() / "t-0"
    if _dir.exists():
        shutil.rmtree(_dir)
    _dir.mkdir(parents=True)
    return _dir


def _with_offsets(batches: list[bytes]) -> bytes:
    """Batches laid end to end with contiguous offsets, as a segment holds them."""
    out = bytearray()
    offset = 0
    for b in batches:
        buf = bytearray(b)
        struct.pack_into(">q", buf, 0, offset)
        (lod,) = struct.unpack_from(">i", buf, 23)
        offset += lod + 1
        out += buf
    return bytes(out)


@cache
def seeds() -> list[bytes]:
    valid = [s for s in batch_seeds() if len(s) >= HEADER_SIZE and s[22] & 7 == 0 or len(s) > 90]
    out = [_with_offsets(valid[:3]), _with_offsets(valid[3:9]), _with_offsets(valid), b""]
    out.append(_with_offsets(valid[:4])[:-5])  # torn write at the tail
    return out


def reseal_all(data: bytes) -> bytes:
    """Every batch's CRC fixed over the length its header claims, end to end."""
    buf = bytearray(data)
    pos = 0
    while pos + HEADER_SIZE <= len(buf):
        (length,) = struct.unpack_from(">i", buf, pos + 8)
        end = pos + 12 + length
        if length < HEADER_SIZE - 12 or end > len(buf):
            break
        struct.pack_into(">I", buf, pos + CRC_OFFSET, crc32c(memoryview(buf)[pos + CRC_OFFSET + 4 : end]))
        pos = end
    return bytes(buf)


def _check_segment(disk: bytes, data: bytes) -> int:
    """The next offset after the recovered segment's batches; raises BadRecovery."""
    if data[: len(disk)] != disk:
        raise BadRecovery(f"recovered segment of {len(disk)} bytes is not a prefix of the input")
    pos, expected = 0, 0
    while pos < len(disk):
        try:
            h = read_header(disk, pos)
            check_header(h, h.size, Origin.LOG)
        except (InvalidBatch, BatchRefused) as exc:
            raise BadRecovery(f"batch at {pos} kept by recovery: {exc}") from None
        if pos + h.size > len(disk) or compute_crc(memoryview(disk)[pos : pos + h.size]) != h.crc:
            raise BadRecovery(f"batch at {pos} kept by recovery is cut off or fails its CRC")
        if h.base_offset < expected:
            raise BadRecovery(f"batch at {pos} goes back to offset {h.base_offset}")
        if h.last_offset > MAX_RELATIVE_OFFSET:
            raise BadRecovery(f"batch at {pos} ends at offset {h.last_offset}, past the segment's range")
        expected = h.next_offset
        pos += h.size
    return expected


def _recover(data: bytes) -> None:
    d = _partition_dir()
    (d / SEGMENT).write_bytes(data)
    log = PartitionLog.open(d, _CONFIG)
    try:
        disk = (d / SEGMENT).read_bytes() if (d / SEGMENT).exists() else b""
        next_offset = _check_segment(disk, data)
        if disk and log.log_end_offset != next_offset:
            raise BadRecovery(f"log end {log.log_end_offset} but the last batch ends at {next_offset}")
        if disk and log.log_start_offset == 0 and log.read(0, 1 << 24) != disk:
            raise BadRecovery("reading from the start does not return the segment's bytes")
    finally:
        log.close(sync=False)


def _scan_only(data: bytes) -> None:
    """validated_scan alone on an in-memory file: what recovery would keep."""
    fd = os.memfd_create("fuzz-segment")
    try:
        os.write(fd, data)
        result = validated_scan(fd, len(data), 0)
    finally:
        os.close(fd)
    _check_segment(data[: result.valid_bytes], data)
    if result.batches and result.batches[-1][0] + result.batches[-1][1].size != result.valid_bytes:
        raise BadRecovery("validated_scan's valid bytes do not end at its last batch")


def check(data: bytes) -> None:
    resealed = reseal_all(data)
    if resealed != data:  # the raw bytes through the scan alone, the resealed through open
        _scan_only(data)
    _recover(resealed)


TARGET = Target("recovery", seeds, check, __doc__ or "")
