"""Walking the batches of a segment file: header-only (fast) and CRC-checked (recovery).

Reads go through os.pread in large chunks so a scan costs one syscall per chunk, not per
batch; batches larger than a chunk are handled by re-reading at their position.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Iterator

from cluster.wire.batch_validator import BatchRefused, Origin, check_header
from cluster.wire.record_batch import (
    HEADER_SIZE,
    LOG_OVERHEAD,
    BatchHeader,
    InvalidBatch,
    compute_crc,
    read_header,
)

from .files import pread_exact

logger = logging.getLogger(__name__)

CHUNK = 1 << 20
MAX_RELATIVE_OFFSET = (1 << 31) - 1  # index entries hold offsets relative to the base as int32


def iter_headers(fd: int | Callable[[], int], start: int, end: int,
                 chunk_size: int = CHUNK) -> Iterator[tuple[int, BatchHeader]]:
    """(position, header) of each batch in [start, end) of a file already known to be valid.

    `fd` may be a callable returning the descriptor: it is asked again for every chunk, so
    a generator left suspended while the shared handle cache closes descriptors stays safe.
    Stops quietly at anything that does not parse (a tail that recovery will deal with).
    """
    get_fd = fd if callable(fd) else (lambda: fd)
    pos = start
    while pos + HEADER_SIZE <= end:
        chunk = pread_exact(get_fd(), min(chunk_size, end - pos), pos)
        off = 0
        while off + HEADER_SIZE <= len(chunk):
            try:
                h = read_header(chunk, off)
            except InvalidBatch:
                return
            if h.batch_length < HEADER_SIZE - LOG_OVERHEAD or pos + off + h.size > end:
                return
            yield pos + off, h
            off += h.size
        if off == 0:  # chunk shorter than a header: the file ended
            return
        pos += off


@dataclass
class ScanResult:
    """Outcome of a CRC-checked scan: where valid data ends and why the scan stopped."""

    valid_bytes: int
    batches: list[tuple[int, BatchHeader]]
    problem: str | None  # None when the file ended cleanly on a batch boundary


def validated_scan(fd: int, size: int, base_offset: int) -> ScanResult:
    """Check every batch (magic, length, header rules, CRC, rising offsets) of a segment.

    Used on open for the last segment after an unclean shutdown and for any segment whose
    index is damaged. Returns the headers so the caller can rebuild indexes without a
    second pass.
    """
    batches: list[tuple[int, BatchHeader]] = []
    pos = 0
    expected = base_offset
    while pos < size:
        chunk = pread_exact(fd, min(CHUNK, size - pos), pos)
        off = 0
        while off < len(chunk):
            if len(chunk) - off < HEADER_SIZE:
                if pos + off + HEADER_SIZE > size:
                    return ScanResult(pos + off, batches, "truncated batch header")
                break  # header straddles the chunk: re-read from here
            try:
                h = read_header(chunk, off)
            except InvalidBatch as e:
                return ScanResult(pos + off, batches, str(e))
            problem = _check_header(h, expected, base_offset)
            if problem:
                return ScanResult(pos + off, batches, problem)
            if pos + off + h.size > size:
                return ScanResult(pos + off, batches, "truncated batch")
            if off + h.size > len(chunk):
                if off == 0:  # a batch bigger than the chunk: read it alone
                    chunk = pread_exact(fd, h.size, pos)
                else:
                    break
            if compute_crc(memoryview(chunk)[off : off + h.size]) != h.crc:
                return ScanResult(pos + off, batches, "CRC32C mismatch")
            batches.append((pos + off, h))
            expected = h.next_offset
            off += h.size
        pos += off
    return ScanResult(pos, batches, None)


def _check_header(h: BatchHeader, expected_min_offset: int, segment_base: int) -> str | None:
    """The write paths' header rules for stored batches (batch_validator, Origin.LOG)."""
    try:
        check_header(h, h.size, Origin.LOG)
    except BatchRefused as exc:
        return exc.message
    if h.base_offset < expected_min_offset:
        return f"base offset {h.base_offset} goes backwards (expected >= {expected_min_offset})"
    if h.last_offset - segment_base > MAX_RELATIVE_OFFSET:
        # The log rolls a segment before any batch would pass this; the indexes store
        # offsets relative to the base as int32 and could not hold it (found by tests/fuzz).
        return (f"last offset {h.last_offset} is beyond the int32 range of segment "
                f"{segment_base}'s relative offsets")
    return None
