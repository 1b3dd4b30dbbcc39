"""The Fetch read as file ranges: what `PartitionLog.read_limited` returns, without the bytes.

Why: on a plaintext connection the broker sends log bytes with `os.sendfile` from the
page cache, so the read must say *where* the bytes are, not copy them into memory. The
reply must be byte-identical to the bytes path (`Segment.read_at`): the same whole
batches, and the same `consumed` count against the Fetch budget (which decides what later
partitions get). So each segment's span is computed with `read_at`'s rules:

- nothing if the first batch starts at or past `max_offset`, or is bigger than the limit
  without `min_one`;
- a window of `want = min(max(max_bytes, first batch), segment end - pos)` bytes;
- cut before the first batch with base offset >= `max_offset` when that batch lies whole
  inside the window (then `consumed` is the bytes returned), else every whole batch of the
  window (`consumed` is the window, as Kafka counts a trailing partial batch it sends).

Finding the last whole batch in a window does not read the window: the offset index gives
a batch boundary at most `index.interval.bytes` before the window's end, and only the
headers from there are read (a few KiB). A window that reaches the end of its segment
needs no read at all, which is a consumer at the tail. Finding `max_offset`'s batch is the
same walk from the index entry for that offset, and is skipped when `max_offset` lies past
the segment (the common case: the high watermark is past every rolled segment).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Iterator

from cluster.wire.record_batch import HEADER_SIZE, LOG_OVERHEAD, BatchHeader, InvalidBatch, read_header

from . import index as ix
from .errors import OffsetOutOfRange
from .file_range import RANGES, FileRange, RangeBudget
from .files import INDEX_SUFFIX, pread_exact
from .handles import READ_HANDLES

if TYPE_CHECKING:
    from .partition_log import PartitionLog
    from .segment import Segment

# Bytes read per pread while walking headers: a few index intervals of small batches.
WALK_CHUNK = 16 * 1024


def read_ranges(log: "PartitionLog", offset: int, max_bytes: int, *,
                max_offset: int | None = None, min_one: bool = True,
                budget: RangeBudget = RANGES, min_range: int = 0) -> tuple[list[FileRange | bytes], int]:
    """(pieces, consumed): `read_limited`'s batches as file ranges, in order. A piece is
    bytes (read with pread: the same bytes) where it is shorter than `min_range` or
    `budget` has no descriptor left."""
    log._check_open()
    leo = log.log_end_offset
    if offset < log.log_start_offset or offset > leo:
        raise OffsetOutOfRange(offset, log.log_start_offset, leo)
    out: list[FileRange | bytes] = []
    if offset == leo:
        return out, 0
    segments = log.segments
    consumed = 0
    for i in range(log._segment_index(offset), len(segments)):
        seg = segments[i]
        loc = _locate(seg, offset)
        if loc is None:
            continue
        pos, h = loc
        end_offset = seg.next_offset if seg.active else (
            segments[i + 1].base_offset if i + 1 < len(segments) else None)
        count, used, at_end = span_at(seg, pos, h, max_bytes - consumed, max_offset,
                                      min_one=min_one and consumed == 0, end_offset=end_offset)
        if count:
            fd = seg._log_fd()
            rng = budget.open(fd, str(seg.log_path), pos, count) if count >= min_range else None
            out.append(rng if rng is not None else pread_exact(fd, count, pos))
        consumed += used
        if not at_end or consumed >= max_bytes:
            break
    return out, consumed


def span_at(seg: "Segment", pos: int, first: BatchHeader, max_bytes: int,
            max_offset: int | None, *, min_one: bool,
            end_offset: int | None) -> tuple[int, int, bool]:
    """(count, consumed, reached_segment_end) of `Segment.read_at(pos, ...)`: its data is
    the file's bytes [pos, pos + count). `end_offset` is an offset no batch of the segment
    reaches (the next segment's base, or the active one's next offset), None if unknown."""
    if max_offset is not None and first.base_offset >= max_offset:
        return 0, 0, False
    if first.size > max_bytes and not min_one:
        return 0, 0, False
    want = min(max(max_bytes, first.size), seg.size - pos)
    window_end = pos + want
    fd = seg._log_fd
    if max_offset is not None and (end_offset is None or max_offset < end_offset):
        start = max(pos, seg.lookup_position(max_offset))
        for q, h in _headers(fd, start, window_end):
            if q + h.size > window_end:
                break  # the cut batch is not whole in the window: no cut (as read_at)
            if h.base_offset >= max_offset:
                return q - pos, q - pos, False
    if window_end >= seg.size:
        end = seg.size  # segments hold whole batches only
    else:
        end = max(pos, _floor_position(seg, window_end))
        for q, h in _headers(fd, end, window_end):
            if q + h.size > window_end:
                break
            end = q + h.size
    return end - pos, want, end >= seg.size


def _locate(seg: "Segment", offset: int) -> tuple[int, BatchHeader] | None:
    """`Segment.locate` by header walk: the first batch whose last offset is >= `offset`."""
    for q, h in _headers(seg._log_fd, seg.lookup_position(offset), seg.size):
        if h.last_offset >= offset:
            return q, h
    return None


def _floor_position(seg: "Segment", position: int) -> int:
    """A batch boundary at or before `position`, from the offset index."""
    if seg.offset_index is not None:
        return seg.offset_index.floor_position(position)
    if not seg.index_size:
        return 0
    fd = READ_HANDLES.get(str(seg.path(INDEX_SUFFIX)))
    return ix.file_position_floor(fd, seg.index_size, position)


def _headers(fd: Callable[[], int], start: int, stop: int) -> Iterator[tuple[int, BatchHeader]]:
    """(position, header) of consecutive batches from the boundary `start`, for each whose
    header lies before `stop`; a batch bigger than a chunk is hopped over by its header.
    `fd` is asked again for every chunk (the shared handle cache may close descriptors)."""
    p = start
    while p + HEADER_SIZE <= stop:
        chunk = pread_exact(fd(), min(WALK_CHUNK, stop - p), p)
        off = 0
        while off + HEADER_SIZE <= len(chunk):
            h = read_header(chunk, off)
            if h.batch_length < HEADER_SIZE - LOG_OVERHEAD:
                raise InvalidBatch("batch_length shorter than the header")
            yield p + off, h
            off += h.size
        if off == 0:
            return  # end of file
        p += off
