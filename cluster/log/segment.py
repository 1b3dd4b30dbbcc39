"""One segment: a `.log` file of raw batches plus its sparse `.index` and `.timeindex`.

A segment is either *active* (the last one: owns a read-write descriptor, keeps its indexes
in memory, knows where it ends) or *inactive* (immutable: no descriptor of its own, reads
borrow one from the shared LRU, index lookups are preads). Deactivating a segment (roll or
close) writes its indexes and fsyncs it, which is what lets crash recovery check only the
last segment.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Iterator

from cluster.wire.record_batch import HEADER_SIZE, BatchHeader, iter_batches, read_header

from . import index as ix
from .files import (
    INDEX_SUFFIX,
    LOG_SUFFIX,
    TIMEINDEX_SUFFIX,
    pread_exact,
    segment_name,
    unlink_quietly,
    pwrite_all,
    write_file,
)
from .file_range import truncated
from .handles import READ_HANDLES
from .scan import MAX_RELATIVE_OFFSET, iter_headers, validated_scan

logger = logging.getLogger(__name__)

LOCATE_CHUNK = 64 * 1024


class Segment:
    """State of one segment; see the module docstring for active vs inactive."""

    def __init__(self, directory: Path, base_offset: int) -> None:
        self.directory = directory
        self.base_offset = base_offset
        self.size = 0
        self.max_timestamp = -1
        self.offset_of_max_timestamp = -1
        # Active-only state.
        self.fd: int | None = None
        self.next_offset = base_offset  # meaningful only while active
        self.offset_index: ix.OffsetIndex | None = None
        self.time_index: ix.TimeIndex | None = None
        self.bytes_since_index = 0
        self.first_append_ms: int | None = None
        self.dirty = False
        # Inactive-only state: index file sizes for on-disk lookups.
        self.index_size = 0
        self.timeindex_size = 0

    def __repr__(self) -> str:
        state = "active" if self.fd is not None else "inactive"
        return f"Segment({self.base_offset}, {self.size}B, {state})"

    # -- paths -----------------------------------------------------------------------
    def path(self, suffix: str) -> Path:
        return self.directory / segment_name(self.base_offset, suffix)

    @property
    def log_path(self) -> Path:
        return self.path(LOG_SUFFIX)

    @property
    def active(self) -> bool:
        return self.fd is not None

    # -- lifecycle -------------------------------------------------------------------
    @classmethod
    def create(cls, directory: Path, base_offset: int) -> "Segment":
        """A new, empty, active segment (the caller fsyncs the directory if it cares)."""
        seg = cls(directory, base_offset)
        READ_HANDLES.evict(str(seg.log_path))
        truncated(seg.log_path, 0)  # O_TRUNC of a file still named so (not expected)
        seg.fd = os.open(seg.log_path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        for suffix in (INDEX_SUFFIX, TIMEINDEX_SUFFIX):
            unlink_quietly(seg.path(suffix))
        seg.offset_index = ix.OffsetIndex.empty()
        seg.time_index = ix.TimeIndex.empty()
        return seg

    @classmethod
    def load_inactive(cls, directory: Path, base_offset: int) -> tuple["Segment", bool]:
        """Open-time view of a rolled segment; False if its indexes need a rebuild."""
        seg = cls(directory, base_offset)
        seg.size = os.stat(seg.log_path).st_size
        try:
            seg.index_size = os.stat(seg.path(INDEX_SUFFIX)).st_size
            seg.timeindex_size = os.stat(seg.path(TIMEINDEX_SUFFIX)).st_size
        except FileNotFoundError:
            return seg, False
        ifd = READ_HANDLES.get(str(seg.path(INDEX_SUFFIX)))
        if not ix.quick_check_offset_file(ifd, seg.index_size, seg.size):
            return seg, False
        tfd = READ_HANDLES.get(str(seg.path(TIMEINDEX_SUFFIX)))
        if not ix.quick_check_time_file(tfd, seg.timeindex_size):
            return seg, False
        last = ix.file_last_time_entry(tfd, seg.timeindex_size)
        if last is not None:
            seg.max_timestamp, rel = last
            seg.offset_of_max_timestamp = base_offset + rel
        elif seg.size:
            return seg, False  # a non-empty segment always gets a final time entry
        return seg, True

    def activate(self, *, trust_indexes: bool, index_interval: int) -> int:
        """Make this (the last) segment writable, recovering it unless `trust_indexes`.

        Returns how many bytes were cut off a torn or corrupt tail.
        """
        for suffix in (LOG_SUFFIX, INDEX_SUFFIX, TIMEINDEX_SUFFIX):
            READ_HANDLES.evict(str(self.path(suffix)))
        self.fd = os.open(self.log_path, os.O_RDWR)
        self.size = os.fstat(self.fd).st_size
        if trust_indexes and self._load_indexes_and_tail(index_interval):
            return 0
        result = validated_scan(self.fd, self.size, self.base_offset)
        cut = self.size - result.valid_bytes
        if cut:
            logger.warning(
                "recovery: truncated %s by %d bytes at position %d (%s)",
                self.log_path, cut, result.valid_bytes, result.problem,
            )
            truncated(self.log_path, result.valid_bytes)
            os.ftruncate(self.fd, result.valid_bytes)
            self.size = result.valid_bytes
        self._rebuild_from(result.batches, index_interval)
        return cut

    def _load_indexes_and_tail(self, index_interval: int) -> bool:
        """Trusted path after a clean shutdown: read index files, walk headers past the last entry."""
        try:
            oi = ix.OffsetIndex.from_bytes(self.path(INDEX_SUFFIX).read_bytes(), max(self.size, 1))
            ti = ix.TimeIndex.from_bytes(self.path(TIMEINDEX_SUFFIX).read_bytes())
        except FileNotFoundError:
            return False
        if oi is None or ti is None:
            return False
        start = oi.pos[-1] if len(oi) else 0
        headers = list(iter_headers(self.fd, start, self.size))  # type: ignore[arg-type]
        end = headers[-1][0] + headers[-1][1].size if headers else start
        if end != self.size:
            return False
        self.offset_index, self.time_index = oi, ti
        self.next_offset = headers[-1][1].next_offset if headers else self.base_offset
        last = ti.last()
        if last is not None:
            self.max_timestamp, self.offset_of_max_timestamp = last[0], self.base_offset + last[1]
        for _, h in headers:  # the final time entry should already cover these; be sure
            if h.max_timestamp > self.max_timestamp:
                self.max_timestamp = h.max_timestamp
                self.offset_of_max_timestamp = h.base_offset if h.log_append_time else h.last_offset
        # The batch at `start` (if indexed) and everything after it count towards the next entry.
        self.bytes_since_index = sum(h.size for _, h in headers)
        return True

    def _rebuild_from(self, batches: list[tuple[int, BatchHeader]], index_interval: int) -> None:
        """Fresh in-memory indexes and end state from a list of (position, header)."""
        self.offset_index = ix.OffsetIndex.empty()
        self.time_index = ix.TimeIndex.empty()
        self.bytes_since_index = 0
        self.max_timestamp = self.offset_of_max_timestamp = -1
        self.next_offset = self.base_offset
        for pos, h in batches:
            self.index_batch(pos, h, index_interval)
        self.dirty = True

    def rebuild_inactive_indexes(self, index_interval: int, *, sync: bool) -> int:
        """Recreate a rolled segment's missing or damaged index files; returns bytes cut."""
        fd = os.open(self.log_path, os.O_RDWR)
        try:
            result = validated_scan(fd, self.size, self.base_offset)
            cut = self.size - result.valid_bytes
            if cut:
                logger.warning(
                    "recovery: truncated %s by %d bytes at position %d (%s)",
                    self.log_path, cut, result.valid_bytes, result.problem,
                )
                truncated(self.log_path, result.valid_bytes)
                os.ftruncate(fd, result.valid_bytes)
                self.size = result.valid_bytes
                READ_HANDLES.evict(str(self.log_path))
        finally:
            os.close(fd)
        self._rebuild_from(result.batches, index_interval)
        self._write_indexes(sync=sync)
        self.offset_index = self.time_index = None  # inactive: lookups go to the files
        self.dirty = False
        logger.info("recovery: rebuilt indexes of %s", self.log_path)
        return cut

    def deactivate(self, *, sync: bool = True) -> None:
        """Roll or close: persist indexes with a final time entry, fsync, drop the descriptor."""
        if self.fd is None:
            return
        if sync and self.dirty:
            os.fdatasync(self.fd)
        self._write_indexes(sync=sync)
        os.close(self.fd)
        self.fd = None
        self.offset_index = None
        self.time_index = None
        self.dirty = False

    def _write_indexes(self, *, sync: bool) -> None:
        assert self.offset_index is not None and self.time_index is not None
        if self.max_timestamp >= 0 or self.size:
            self.time_index.maybe_append(
                self.max_timestamp, max(self.offset_of_max_timestamp - self.base_offset, 0)
            )
        oi, ti = self.offset_index.to_bytes(), self.time_index.to_bytes()
        for suffix in (INDEX_SUFFIX, TIMEINDEX_SUFFIX):
            READ_HANDLES.evict(str(self.path(suffix)))
        write_file(self.path(INDEX_SUFFIX), oi, sync=sync)
        write_file(self.path(TIMEINDEX_SUFFIX), ti, sync=sync)
        self.index_size, self.timeindex_size = len(oi), len(ti)

    def delete(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        for suffix in (LOG_SUFFIX, INDEX_SUFFIX, TIMEINDEX_SUFFIX):
            READ_HANDLES.evict(str(self.path(suffix)))
            unlink_quietly(self.path(suffix))

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    # -- appends (active only) -------------------------------------------------------
    def index_batch(self, pos: int, h: BatchHeader, index_interval: int) -> None:
        """Account for one batch written at `pos`: running max timestamp, sparse entries."""
        assert self.offset_index is not None and self.time_index is not None
        if h.max_timestamp > self.max_timestamp:
            self.max_timestamp = h.max_timestamp
            self.offset_of_max_timestamp = (
                h.base_offset if h.log_append_time else h.last_offset
            )
        if self.bytes_since_index >= index_interval and (pos or index_interval == 0):
            self.offset_index.append(h.base_offset - self.base_offset, pos)
            if self.max_timestamp >= 0:
                self.time_index.maybe_append(
                    self.max_timestamp, self.offset_of_max_timestamp - self.base_offset
                )
            self.bytes_since_index = 0
        self.bytes_since_index += h.size
        self.next_offset = h.next_offset

    def write(self, data: bytes | bytearray | memoryview, headers: list[tuple[int, BatchHeader]],
              index_interval: int, now_ms: int) -> None:
        """Append batches (already patched) whose positions in `data` are given."""
        assert self.fd is not None
        start = self.size
        pwrite_all(self.fd, data, start)
        for pos, h in headers:
            self.index_batch(start + pos, h, index_interval)
        self.size += len(data)
        self.dirty = True
        if self.first_append_ms is None:
            self.first_append_ms = now_ms

    def sync(self) -> None:
        if self.fd is not None and self.dirty:
            os.fdatasync(self.fd)
            self.dirty = False

    # -- reads -----------------------------------------------------------------------
    def _log_fd(self) -> int:
        return self.fd if self.fd is not None else READ_HANDLES.get(str(self.log_path))

    def lookup_position(self, offset: int) -> int:
        """Position of a batch starting at or before `offset` (index lookup, no scan)."""
        rel = offset - self.base_offset
        if rel <= 0:
            return 0
        if self.offset_index is not None:
            return self.offset_index.lookup(rel)
        if not self.index_size:
            return 0
        fd = READ_HANDLES.get(str(self.path(INDEX_SUFFIX)))
        return ix.file_offset_lookup(fd, self.index_size, min(rel, MAX_RELATIVE_OFFSET))

    def locate(self, offset: int) -> tuple[int, BatchHeader] | None:
        """The first batch whose last offset is >= `offset` (the batch containing it, or the next)."""
        pos = self.lookup_position(offset)
        while pos + HEADER_SIZE <= self.size:
            chunk = pread_exact(self._log_fd(), min(LOCATE_CHUNK, self.size - pos), pos)
            advanced = 0
            for p, h in iter_batches(chunk):
                if h.last_offset >= offset:
                    return pos + p, h
                advanced = p + h.size
            if advanced == 0:  # the batch at `pos` is bigger than the chunk: hop by its header
                h = read_header(chunk)
                if h.last_offset >= offset:
                    return pos, h
                advanced = h.size
            pos += advanced
        return None

    def read_at(self, pos: int, first: BatchHeader, max_bytes: int, max_offset: int | None,
                *, min_one: bool = True) -> tuple[bytes | memoryview, int, bool]:
        """Whole batches from `pos` up to max_bytes, none starting at >= max_offset.

        Reads only the byte range it may return (one pread of at most max_bytes, or of the
        first batch when `min_one` lets that batch exceed the limit, KIP-74). Without
        `min_one`, a first batch bigger than max_bytes gives nothing and nothing is read.

        Returns (data, consumed, reached_segment_end). `consumed` is what the read counts
        against a Fetch's byte budget, as Apache Kafka counts it: the whole byte range read,
        including a trailing partial batch (Kafka sends that tail, clients drop it; we drop
        it here), but only up to max_offset when that cut the read. `data` is a memoryview
        of the read buffer when a partial tail was cut (slicing bytes would copy most of a
        Fetch reply once more); it never pins more than `consumed` bytes.
        """
        if max_offset is not None and first.base_offset >= max_offset:
            return b"", 0, False
        if first.size > max_bytes and not min_one:
            return b"", 0, False
        want = min(max(max_bytes, first.size), self.size - pos)
        data = pread_exact(self._log_fd(), want, pos)
        end = 0
        for p, h in iter_batches(data):
            if max_offset is not None and h.base_offset >= max_offset:
                # The budget stops at max_offset, so the buffer must not pin what lies past it.
                return (bytes(memoryview(data)[:end]) if end else b""), end, False
            end = p + h.size
        return _head(data, end), want, pos + end >= self.size

    def iter_from(self, from_offset: int) -> Iterator[tuple[int, BatchHeader]]:
        """(position, header) of each batch whose last offset is >= from_offset."""
        start = self.lookup_position(from_offset)
        for pos, h in iter_headers(self._log_fd, start, self.size, LOCATE_CHUNK):
            if h.last_offset >= from_offset:
                yield pos, h

    def read_batch(self, pos: int, h: BatchHeader) -> bytes:
        return pread_exact(self._log_fd(), h.size, pos)

    def time_lookup(self, ts: int) -> int:
        """An offset from which a forward scan finds the first batch with max timestamp >= ts."""
        if self.time_index is not None:
            rel = self.time_index.lookup(ts)
        elif self.timeindex_size:
            fd = READ_HANDLES.get(str(self.path(TIMEINDEX_SUFFIX)))
            rel = ix.file_time_lookup(fd, self.timeindex_size, ts)
        else:
            rel = None
        return self.base_offset + (rel or 0)


    # -- truncation ------------------------------------------------------------------
    def truncate_to(self, offset: int, index_interval: int) -> None:
        """Cut every batch whose last offset is >= `offset`; the segment becomes active."""
        if self.fd is None:
            for suffix in (LOG_SUFFIX, INDEX_SUFFIX, TIMEINDEX_SUFFIX):
                READ_HANDLES.evict(str(self.path(suffix)))
            self.fd = os.open(self.log_path, os.O_RDWR)
            self.size = os.fstat(self.fd).st_size
        kept = [(p, h) for p, h in iter_headers(self.fd, 0, self.size) if h.last_offset < offset]
        new_size = kept[-1][0] + kept[-1][1].size if kept else 0
        truncated(self.log_path, new_size)
        os.ftruncate(self.fd, new_size)
        self.size = new_size
        self._rebuild_from(kept, index_interval)
        self.first_append_ms = None


def _head(data: bytes, end: int) -> bytes | memoryview:
    """data[:end] without a copy."""
    return data if end == len(data) else memoryview(data)[:end]
