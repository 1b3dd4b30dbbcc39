"""Sparse offset and time indexes of one segment.

`.index` maps relative offset -> file position of a batch starting at that offset, one
entry every index_interval_bytes; `.timeindex` maps the segment's running max timestamp
-> offset of the batch that set it. Both only need their entries to be *correct*, not
complete: a lookup lands at or before the wanted batch and the caller scans forward, so an
index that lost trailing entries in a crash still works.

The active segment keeps its index in small arrays (written to disk on roll and close);
inactive segments are searched on disk with a handful of preads, so idle partitions hold
no index memory at all.
"""

from __future__ import annotations

import bisect
import os
import struct
from array import array
from dataclasses import dataclass
from typing import Callable, Sequence

OFFSET_ENTRY = struct.Struct(">ii")  # relative offset, position
TIME_ENTRY = struct.Struct(">qi")  # timestamp, relative offset


class _FileColumn(Sequence[int]):
    """One field of fixed-size index entries on disk, indexable for bisect via pread."""

    def __init__(self, fd: int, entry: struct.Struct, field: int, count: int) -> None:
        self._fd = fd
        self._entry = entry
        self._field = field
        self._count = count

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, i):  # type: ignore[override]
        if not 0 <= i < self._count:
            raise IndexError(i)
        data = os.pread(self._fd, self._entry.size, i * self._entry.size)
        return self._entry.unpack(data)[self._field]

    def entry(self, i: int) -> tuple[int, int]:
        return self._entry.unpack(os.pread(self._fd, self._entry.size, i * self._entry.size))


@dataclass
class OffsetIndex:
    """In-memory sparse offset index of the active segment."""

    rel: array
    pos: array

    @classmethod
    def empty(cls) -> "OffsetIndex":
        return cls(array("i"), array("i"))

    def __len__(self) -> int:
        return len(self.rel)

    def append(self, rel: int, pos: int) -> None:
        self.rel.append(rel)
        self.pos.append(pos)

    def lookup(self, rel: int) -> int:
        """Position of the last indexed batch starting at or before `rel` (0 if none)."""
        i = bisect.bisect_right(self.rel, rel) - 1
        return self.pos[i] if i >= 0 else 0

    def floor_position(self, position: int) -> int:
        """The last indexed batch position at or before `position` (0 if none)."""
        i = bisect.bisect_right(self.pos, position) - 1
        return self.pos[i] if i >= 0 else 0

    def truncate_to_position(self, position: int) -> None:
        """Drop entries pointing at or past `position` (the log was cut there)."""
        i = bisect.bisect_left(self.pos, position)
        del self.rel[i:]
        del self.pos[i:]

    def to_bytes(self) -> bytes:
        out = bytearray(len(self.rel) * OFFSET_ENTRY.size)
        for i, (r, p) in enumerate(zip(self.rel, self.pos)):
            OFFSET_ENTRY.pack_into(out, i * OFFSET_ENTRY.size, r, p)
        return bytes(out)

    @classmethod
    def from_bytes(cls, data: bytes, log_size: int) -> "OffsetIndex | None":
        """Parse and fully check an index file; None if it is damaged (then rebuild)."""
        if len(data) % OFFSET_ENTRY.size:
            return None
        idx = cls.empty()
        last_rel = last_pos = -1
        for r, p in OFFSET_ENTRY.iter_unpack(data):
            if r <= last_rel or p <= last_pos or r < 0 or p >= log_size:
                return None
            idx.append(r, p)
            last_rel, last_pos = r, p
        return idx


@dataclass
class TimeIndex:
    """In-memory sparse time index of the active segment (timestamps strictly rise)."""

    ts: array
    rel: array

    @classmethod
    def empty(cls) -> "TimeIndex":
        return cls(array("q"), array("i"))

    def __len__(self) -> int:
        return len(self.ts)

    def last(self) -> tuple[int, int] | None:
        return (self.ts[-1], self.rel[-1]) if self.ts else None

    def maybe_append(self, ts: int, rel: int) -> None:
        """Record a new running maximum; ignored unless it beats the last entry."""
        if not self.ts or ts > self.ts[-1]:
            self.ts.append(ts)
            self.rel.append(rel)

    def lookup(self, ts: int) -> int | None:
        """Relative offset of the last entry whose timestamp is < ts (scan starts there)."""
        i = bisect.bisect_left(self.ts, ts) - 1
        return self.rel[i] if i >= 0 else None

    def truncate_to_offset(self, rel: int) -> None:
        """Drop entries for offsets >= rel."""
        keep = 0
        while keep < len(self.rel) and self.rel[keep] < rel:
            keep += 1
        del self.ts[keep:]
        del self.rel[keep:]

    def to_bytes(self) -> bytes:
        out = bytearray(len(self.ts) * TIME_ENTRY.size)
        for i, (t, r) in enumerate(zip(self.ts, self.rel)):
            TIME_ENTRY.pack_into(out, i * TIME_ENTRY.size, t, r)
        return bytes(out)

    @classmethod
    def from_bytes(cls, data: bytes) -> "TimeIndex | None":
        if len(data) % TIME_ENTRY.size:
            return None
        idx = cls.empty()
        last_ts, last_rel = None, -1
        for t, r in TIME_ENTRY.iter_unpack(data):
            if (last_ts is not None and t <= last_ts) or r < last_rel or r < 0:
                return None
            idx.ts.append(t)
            idx.rel.append(r)
            last_ts, last_rel = t, r
        return idx


def file_offset_lookup(fd: int, file_size: int, rel: int) -> int:
    """OffsetIndex.lookup against an index file on disk."""
    col = _FileColumn(fd, OFFSET_ENTRY, 0, file_size // OFFSET_ENTRY.size)
    i = bisect.bisect_right(col, rel) - 1
    return col.entry(i)[1] if i >= 0 else 0


def file_position_floor(fd: int, file_size: int, position: int) -> int:
    """OffsetIndex.floor_position against an index file on disk."""
    col = _FileColumn(fd, OFFSET_ENTRY, 1, file_size // OFFSET_ENTRY.size)
    i = bisect.bisect_right(col, position) - 1
    return col.entry(i)[1] if i >= 0 else 0


def file_time_lookup(fd: int, file_size: int, ts: int) -> int | None:
    """TimeIndex.lookup against a time index file on disk."""
    col = _FileColumn(fd, TIME_ENTRY, 0, file_size // TIME_ENTRY.size)
    i = bisect.bisect_left(col, ts) - 1
    return col.entry(i)[1] if i >= 0 else None


def file_last_time_entry(fd: int, file_size: int) -> tuple[int, int] | None:
    """(max timestamp, relative offset) of the last time index entry: the segment's max."""
    n = file_size // TIME_ENTRY.size
    if n == 0:
        return None
    return TIME_ENTRY.unpack(os.pread(fd, TIME_ENTRY.size, (n - 1) * TIME_ENTRY.size))


def quick_check_offset_file(fd: int, file_size: int, log_size: int) -> bool:
    """Cheap open-time sanity check of an inactive segment's index (first and last entry)."""
    if file_size % OFFSET_ENTRY.size:
        return False
    n = file_size // OFFSET_ENTRY.size
    if n == 0:
        return True
    first = OFFSET_ENTRY.unpack(os.pread(fd, OFFSET_ENTRY.size, 0))
    last = OFFSET_ENTRY.unpack(os.pread(fd, OFFSET_ENTRY.size, (n - 1) * OFFSET_ENTRY.size))
    ok: Callable[[tuple[int, int]], bool] = lambda e: e[0] >= 0 and 0 <= e[1] < log_size
    return ok(first) and ok(last) and last[0] >= first[0] and last[1] >= first[1]


def quick_check_time_file(fd: int, file_size: int) -> bool:
    if file_size % TIME_ENTRY.size:
        return False
    n = file_size // TIME_ENTRY.size
    if n == 0:
        return True
    first = TIME_ENTRY.unpack(os.pread(fd, TIME_ENTRY.size, 0))
    last = TIME_ENTRY.unpack(os.pread(fd, TIME_ENTRY.size, (n - 1) * TIME_ENTRY.size))
    return first[1] >= 0 and last[0] >= first[0] and last[1] >= first[1]
