"""PartitionLog: the on-disk log of one partition, as the broker and the mirror use it.

The broker moves RecordBatch v2 bytes only: an append parses batch headers, patches
base offset / leader epoch (outside the CRC) and writes; a read returns whole raw batches.
No record is ever decoded here.

Directory layout (`<data_dir>/<topic>-<partition>/`):
    00000000000000000000.log / .index / .timeindex   segments named by base offset
    log-start-offset                                 persisted DeleteRecords position
    leader-epoch-checkpoint                          epoch -> start offset (Kafka format)
    .clean-shutdown                                  present only between close() and open()
    cleaner-checkpoint                               compacted topics: first dirty offset, delete horizons

Durability: every append is in the page cache (os.pwrite) before it returns, so kill -9
loses nothing acknowledged; what a power cut loses depends on LogConfig.fsync (see
LogConfig). Rolled segments are always fsynced, so recovery after an unclean shutdown
CRC-checks only the last segment (plus any whose index is missing or damaged).

Not thread-safe: one owner (the broker's event loop) drives each log.
"""

from __future__ import annotations

import bisect
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

from cluster.wire.record_batch import (
    TIMESTAMP_TYPE_BIT,
    BatchHeader,
    InvalidBatch,
    read_header,
    set_base_offset,
    set_leader_epoch,
    set_max_timestamp_log_append,
)

from .config import LogConfig
from .epoch_cache import LeaderEpochCache
from .errors import LogClosed, LogError, OffsetOutOfOrder, OffsetOutOfRange
from .files import atomic_write, fsync_dir
from .handles import READ_HANDLES
from .cleaner import CleanStats, clean, forget_checkpoint, recover_cleaner_files
from .recovery import CLEAN_SHUTDOWN_FILE, LOG_START_FILE, recover
from .segment import MAX_RELATIVE_OFFSET, Segment

logger = logging.getLogger(__name__)


# refine(batch_bytes, target_ts) -> (offset, timestamp) of the first record with
# timestamp >= target_ts, for callers that can decode records (the broker's ListOffsets).
Refine = Callable[[bytes, int], "tuple[int, int] | None"]


@dataclass(frozen=True)
class AppendResult:
    """What a produce response needs: assigned offsets and the timestamps the log kept."""

    base_offset: int
    last_offset: int
    log_append_time_ms: int  # -1 unless the topic uses LogAppendTime
    max_timestamp: int
    offset_of_max_timestamp: int


class PartitionLog:
    """Segments of one partition plus log start offset and leader-epoch cache."""

    def __init__(self, directory: Path, config: LogConfig, segments: list[Segment],
                 log_start_offset: int, epochs: LeaderEpochCache) -> None:
        self.directory = directory
        self.config = config
        self._segments = segments
        self._bases = [s.base_offset for s in segments]
        self._log_start = log_start_offset
        self._epochs = epochs
        self._last_flush_ms = 0
        self._dir_dirty = False  # a segment was created since the directory was last fsynced
        self._closed = False

    # -- open / recovery ---------------------------------------------------------
    @classmethod
    def open(cls, directory: Path, config: LogConfig) -> "PartitionLog":
        """Create the directory's log, or reopen it, recovering after an unclean shutdown."""
        directory = Path(directory)
        recover_cleaner_files(directory)  # finish or undo a compaction swap cut by a crash
        found = recover(directory, config)
        log = cls(directory, config, found.segments, found.log_start, found.epochs)
        if log._log_start > log.log_end_offset:
            logger.warning(
                "%s: log start offset %d is past the recovered log end %d; restarting the log there",
                directory, log._log_start, log.log_end_offset,
            )
            log.truncate_fully_and_start_at(log._log_start)
        log._epochs.truncate_from_end(log.log_end_offset)
        log._epochs.truncate_from_start(log._log_start)
        log._epochs.save()
        logger.debug("opened %s: [%d, %d) in %d segments, clean=%s", directory,
                     log._log_start, log.log_end_offset, len(log._segments), found.clean)
        return log

    def _set_log_start(self, offset: int) -> None:
        if offset != self._log_start:
            self._log_start = offset
            atomic_write(self.directory / LOG_START_FILE, f"{offset}\n".encode())

    # -- properties ----------------------------------------------------------------
    @property
    def log_start_offset(self) -> int:
        return self._log_start

    @property
    def log_end_offset(self) -> int:
        return self._active.next_offset

    @property
    def _active(self) -> Segment:
        return self._segments[-1]

    @property
    def segment_count(self) -> int:
        return len(self._segments)

    @property
    def segments(self) -> tuple[Segment, ...]:
        """The segments in offset order; the last is active (the cleaner plans on these)."""
        return tuple(self._segments)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def latest_epoch(self) -> int:
        return self._epochs.latest_epoch

    def size_bytes(self) -> int:
        return sum(s.size for s in self._segments)

    def _check_open(self) -> None:
        if self._closed:
            raise LogClosed(f"{self.directory} is closed")

    # -- appends ---------------------------------------------------------------------
    def append(self, batches: Sequence[bytes | memoryview], *, leader_epoch: int,
               now_ms: int) -> AppendResult:
        """Assign offsets from the log end and write; batches are CRC-checked by the caller."""
        self._check_open()
        buf, headers = self._gather(batches)
        lat = self.config.log_append_time
        next_offset = self.log_end_offset
        for pos, h in headers:
            set_base_offset(buf, next_offset, pos)
            set_leader_epoch(buf, leader_epoch, pos)
            h.base_offset = next_offset
            h.partition_leader_epoch = leader_epoch
            if lat:
                set_max_timestamp_log_append(buf, now_ms, pos)
                h.attributes |= TIMESTAMP_TYPE_BIT
                h.base_timestamp = h.max_timestamp = now_ms
            next_offset = h.next_offset
        self._epochs.assign(leader_epoch, headers[0][1].base_offset)
        return self._write(buf, headers, now_ms, now_ms if lat else -1)

    def append_preserving(self, batches: Sequence[bytes | memoryview], *, now_ms: int) -> AppendResult:
        """Mirror mode: keep base offsets and leader epochs as given (gaps allowed).

        Raises OffsetOutOfOrder if a batch starts below the log end or below the end of the
        previous batch in the same call; nothing is written then.
        """
        self._check_open()
        buf, headers = self._gather(batches)
        expected = self.log_end_offset
        for _, h in headers:
            if h.base_offset < expected:
                raise OffsetOutOfOrder(
                    f"{self.directory}: batch at offset {h.base_offset} would go below "
                    f"the log end {expected}"
                )
            expected = h.next_offset
        for _, h in headers:
            self._epochs.assign(h.partition_leader_epoch, h.base_offset)
        return self._write(buf, headers, now_ms, -1)

    @staticmethod
    def _gather(batches: Sequence[bytes | memoryview]) -> tuple[bytearray, list[tuple[int, BatchHeader]]]:
        """One copy of the request's batches into a bytearray, plus each header."""
        if not batches:
            raise ValueError("append needs at least one batch")
        buf = bytearray().join(batches)  # one copy (bytearray(b"".join()) made two)
        headers = []
        pos = 0
        for b in batches:
            h = read_header(buf, pos)
            if h.size != len(b):
                raise InvalidBatch(f"batch_length says {h.size} bytes, have {len(b)}")
            headers.append((pos, h))
            pos += h.size
        return buf, headers

    def _write(self, buf: bytearray, headers: list[tuple[int, BatchHeader]], now_ms: int,
               log_append_time: int) -> AppendResult:
        cfg = self.config
        mv = memoryview(buf)
        seg = self._active
        if seg.size and seg.first_append_ms is not None and now_ms - seg.first_append_ms >= cfg.segment_ms:
            self._roll(headers[0][1].base_offset)
        group_start = 0  # index into headers of the first batch not yet written
        group_bytes = 0
        for i, (pos, h) in enumerate(headers):
            seg = self._active
            pending = seg.size + group_bytes
            if (pending and pending + h.size > cfg.segment_bytes) or h.last_offset - seg.base_offset > MAX_RELATIVE_OFFSET:
                if group_bytes:
                    self._write_group(mv, headers[group_start:i], now_ms)
                self._roll(h.base_offset)
                group_start, group_bytes = i, 0
            group_bytes += h.size
        self._write_group(mv, headers[group_start:], now_ms)
        if cfg.fsync == "always":
            self._sync()
        best = max(headers, key=lambda ph: ph[1].max_timestamp)[1]  # first of equals wins
        return AppendResult(
            base_offset=headers[0][1].base_offset,
            last_offset=headers[-1][1].last_offset,
            log_append_time_ms=log_append_time,
            max_timestamp=best.max_timestamp,
            offset_of_max_timestamp=best.base_offset if best.log_append_time else best.last_offset,
        )

    def _write_group(self, mv: memoryview, group: list[tuple[int, BatchHeader]], now_ms: int) -> None:
        start = group[0][0]
        end = group[-1][0] + group[-1][1].size
        rebased = [(p - start, h) for p, h in group]
        self._active.write(mv[start:end], rebased, self.config.index_interval_bytes, now_ms)

    def _roll(self, base_offset: int) -> None:
        """Seal the active segment (fsync + indexes + epoch checkpoint), start one at base_offset.

        After this the sealed segment and the epochs starting in it are durable, which is why
        recovery only scans the last segment. The new file's directory entry is fsynced now
        for fsync="always", else at the next flush.
        """
        self._active.deactivate(sync=True)
        self._epochs.save()
        seg = Segment.create(self.directory, base_offset)
        if self.config.fsync == "always":
            fsync_dir(self.directory)
        else:
            self._dir_dirty = True
        self._segments.append(seg)
        self._bases.append(base_offset)
        logger.debug("%s: rolled a new segment at %d", self.directory, base_offset)

    # -- reads -------------------------------------------------------------------------
    def _segment_index(self, offset: int) -> int:
        return max(bisect.bisect_right(self._bases, offset) - 1, 0)

    def read(self, offset: int, max_bytes: int, *, max_offset: int | None = None) -> bytes:
        """Whole raw batches from the one containing `offset` (KIP-74: at least one batch).

        Never returns a batch starting at >= max_offset (high watermark / LSO).
        """
        data = self.read_buffer(offset, max_bytes, max_offset=max_offset)
        return data if isinstance(data, bytes) else bytes(data)

    def read_buffer(self, offset: int, max_bytes: int, *,
                    max_offset: int | None = None) -> bytes | memoryview:
        """`read` without the final copy: a memoryview when the bytes read from disk had to
        be cut."""
        return self.read_limited(offset, max_bytes, max_offset=max_offset)[0]

    def read_limited(self, offset: int, max_bytes: int, *, max_offset: int | None = None,
                     min_one: bool = True) -> tuple[bytes | memoryview, int]:
        """(whole batches, bytes consumed) for Fetch: at most max_bytes from the batch
        containing `offset`, none starting at >= max_offset.

        With `min_one` (KIP-74) the first batch comes whole even when it alone exceeds
        max_bytes; without it such a batch gives nothing. Only the needed byte range of
        each segment is read (the offset index finds where to start). `consumed` is what
        Apache Kafka would count against the request's budget (see Segment.read_at): the
        byte range read, which may end in a partial batch that is not returned.
        """
        self._check_open()
        leo = self.log_end_offset
        if offset < self._log_start or offset > leo:
            raise OffsetOutOfRange(offset, self._log_start, leo)
        if offset == leo:
            return b"", 0
        out: list[bytes | memoryview] = []
        consumed = 0
        for seg in self._segments[self._segment_index(offset):]:
            loc = seg.locate(offset)
            if loc is None:
                continue
            pos, h = loc
            data, used, at_end = seg.read_at(pos, h, max_bytes - consumed, max_offset,
                                             min_one=min_one and consumed == 0)
            if len(data):
                out.append(data)
            consumed += used
            if not at_end or consumed >= max_bytes:
                break
        if not out:
            return b"", consumed
        return (out[0] if len(out) == 1 else b"".join(out)), consumed

    def iter_batch_headers(self, from_offset: int = 0) -> Iterator[BatchHeader]:
        """Headers of readable batches whose last offset is >= from_offset, in log order."""
        self._check_open()
        start = max(from_offset, self._log_start)
        for seg in list(self._segments[self._segment_index(start):]):
            for _, h in seg.iter_from(start):
                yield h

    def offset_for_timestamp(self, ts_ms: int, *, refine: Refine | None = None) -> tuple[int, int] | None:
        """(offset, timestamp) for ListOffsets by time, or None if every batch is older.

        Batch-granular unless `refine` is given: the answer is the first offset of the first
        batch whose max timestamp is >= ts_ms, with that batch's base timestamp if it is
        already >= ts_ms (then the first record qualifies) else its max timestamp. A broker
        that can decode records passes `refine` to pinpoint the record inside the batch.
        """
        self._check_open()
        for seg in self._segments:
            if seg.max_timestamp < ts_ms:
                continue
            for pos, h in seg.iter_from(max(seg.time_lookup(ts_ms), self._log_start)):
                if h.max_timestamp < ts_ms:
                    continue
                if refine is not None:
                    found = refine(seg.read_batch(pos, h), ts_ms)
                    if found is not None:
                        return max(found[0], self._log_start), found[1]
                ts = h.base_timestamp if h.base_timestamp >= ts_ms else h.max_timestamp
                return max(h.base_offset, self._log_start), ts
        return None

    def max_timestamp(self) -> tuple[int, int] | None:
        """(offset, timestamp) of the batch with the greatest max timestamp (first on ties)."""
        self._check_open()
        best: Segment | None = None
        for seg in self._segments:
            if seg.size and (best is None or seg.max_timestamp > best.max_timestamp):
                best = seg
        if best is None or self._log_start >= self.log_end_offset:
            return None
        return max(best.offset_of_max_timestamp, self._log_start), best.max_timestamp

    def begin_leader_epoch(self, leader_epoch: int) -> None:
        """This replica leads from now in `leader_epoch`, starting at the log end (Kafka's
        maybeAssignEpochStartOffset). Recorded before any batch of the epoch exists, so a
        follower whose last fetched epoch is newer than anything this leader wrote is told
        where its tail diverged instead of getting no answer. Not fsynced: an epoch without
        batches that a crash forgets was never led by anyone after the crash."""
        self._check_open()
        self._epochs.assign(leader_epoch, self.log_end_offset)

    def end_offset_for_epoch(self, leader_epoch: int) -> tuple[int, int]:
        """OffsetForLeaderEpoch: (largest known epoch <= leader_epoch, where it ended)."""
        self._check_open()
        return self._epochs.end_offset_for(leader_epoch, self.log_end_offset)

    # -- deletion ------------------------------------------------------------------------
    def delete_records_before(self, offset: int) -> int:
        """DeleteRecords: raise the log start (persisted first), then drop whole segments below it."""
        self._check_open()
        leo = self.log_end_offset
        if offset > leo or offset < 0:
            raise OffsetOutOfRange(offset, self._log_start, leo)
        if offset <= self._log_start:
            return self._log_start
        self._set_log_start(offset)
        self._epochs.truncate_from_start(offset)
        if offset == leo and self._active.size:
            self._roll(leo)  # everything is deleted: let the old active segment go too
        self._delete_below_log_start()
        return self._log_start

    def _delete_below_log_start(self) -> int:
        removed = 0
        while len(self._segments) > 1 and self._segments[1].base_offset <= self._log_start:
            self._delete_first()
            removed += 1
        return removed

    def _delete_first(self) -> None:
        seg = self._segments.pop(0)
        self._bases.pop(0)
        seg.delete()
        logger.debug("%s: deleted segment %d", self.directory, seg.base_offset)

    def apply_retention(self, now_ms: int) -> int:
        """Delete old whole segments by retention.ms / retention.bytes; never the active one."""
        self._check_open()
        cfg = self.config
        removed = self._delete_below_log_start()
        if cfg.delete and cfg.retention_ms >= 0:  # cleanup.policy=compact alone keeps old segments
            while len(self._segments) > 1 and now_ms - self._segments[0].max_timestamp > cfg.retention_ms:
                self._delete_first()
                removed += 1
        if cfg.delete and cfg.retention_bytes >= 0:
            total = self.size_bytes()
            while len(self._segments) > 1 and total - self._segments[0].size >= cfg.retention_bytes:
                total -= self._segments[0].size
                self._delete_first()
                removed += 1
        if removed:
            if self._segments[0].base_offset > self._log_start:
                self._set_log_start(self._segments[0].base_offset)
                self._epochs.truncate_from_start(self._log_start)
            fsync_dir(self.directory)
            logger.info("%s: retention removed %d segment(s); log start now %d",
                        self.directory, removed, self._log_start)
        return removed

    # -- compaction ----------------------------------------------------------------------
    def compact(self, now_ms: int) -> CleanStats | None:
        """Run one whole cleaning pass now if one is due (see cleaner.py); None if not."""
        self._check_open()
        return clean(self, now_ms)

    def replace_segments(self, old: Sequence[Segment], new: Segment) -> None:
        """Cleaner: `new` (already swapped in on disk) takes the place of the contiguous,
        inactive segments `old`, and starts at the same base offset."""
        self._check_open()
        old = list(old)
        i = next((k for k, s in enumerate(self._segments) if s is old[0]), -1)
        if (i < 0 or any(a is not b for a, b in zip(self._segments[i : i + len(old)], old))
                or i + len(old) >= len(self._segments) or any(s.active for s in old)
                or new.base_offset != old[0].base_offset):
            raise LogError(f"{self.directory}: replace_segments got segments that are not in the log")
        self._segments[i : i + len(old)] = [new]
        self._bases[i : i + len(old)] = [new.base_offset]

    def truncate_to(self, offset: int) -> None:
        """Drop every batch whose last offset is >= `offset` (a batch straddling it goes entirely).

        The log end becomes the end of the last batch kept (<= offset); if none is kept, the
        base of the first segment. If even that is >= offset, the log restarts empty at
        `offset` (as Kafka's truncateFullyAndStartAt). Durable on return.
        """
        self._check_open()
        if offset >= self.log_end_offset:
            return
        if self._segments[0].base_offset >= offset:
            self.truncate_fully_and_start_at(offset)
            return
        # Newest first, so a crash part-way leaves a consistent prefix. A segment left with no
        # batch goes too (unless it is the only one), so the log end is the end of the last
        # batch kept even across gaps between segments.
        while True:
            seg = self._active
            if seg.base_offset < offset or len(self._segments) == 1:
                seg.truncate_to(offset, self.config.index_interval_bytes)
                if seg.size or len(self._segments) == 1:
                    break
            self._segments.pop().delete()
            self._bases.pop()
        seg.sync()
        fsync_dir(self.directory)
        if self._log_start > self.log_end_offset:
            self._set_log_start(self.log_end_offset)
        self._epochs.truncate_from_end(self.log_end_offset)
        self._epochs.save()
        forget_checkpoint(self.directory)  # the cleaner's offsets may be reused from here
        logger.info("%s: truncated to %d (log end now %d)", self.directory, offset, self.log_end_offset)

    def truncate_fully_and_start_at(self, offset: int) -> None:
        """Delete everything; the log restarts empty with log start = log end = offset."""
        self._check_open()
        if offset < 0:
            raise ValueError(f"offset must be >= 0, got {offset}")
        for seg in reversed(self._segments):
            seg.delete()
        self._segments = [Segment.create(self.directory, offset)]
        self._bases = [offset]
        fsync_dir(self.directory)
        self._log_start = -1
        self._set_log_start(offset)
        self._epochs.clear()
        forget_checkpoint(self.directory)
        logger.info("%s: restarted empty at offset %d", self.directory, offset)

    def start_at(self, offset: int) -> None:
        """Mirror setup: make an EMPTY log start (and end) at `offset`, like its source partition."""
        self._check_open()
        if self._log_start != self.log_end_offset:
            raise LogError(
                f"{self.directory}: start_at({offset}) needs an empty log, "
                f"it holds [{self._log_start}, {self.log_end_offset})"
            )
        if offset != self._log_start or offset != self._active.base_offset:
            self.truncate_fully_and_start_at(offset)

    # -- durability / lifecycle ----------------------------------------------------------
    def flush(self) -> None:
        """fsync the active segment now (rolled segments already are)."""
        self._check_open()
        self._sync()

    def _sync(self) -> None:
        self._active.sync()
        if self._dir_dirty:
            fsync_dir(self.directory)
            self._dir_dirty = False
        self._epochs.save()

    def maybe_flush(self, now_ms: int) -> None:
        """For fsync="interval": fsync if fsync_interval_ms passed since the last flush."""
        self._check_open()
        if self.config.fsync != "interval" or not self._active.dirty:
            return
        if now_ms - self._last_flush_ms >= self.config.fsync_interval_ms:
            self._sync()
            self._last_flush_ms = now_ms

    def update_config(self, config: LogConfig) -> None:
        """New topic configs apply from the next append / retention pass."""
        config.validate()
        self.config = config

    def close(self, *, sync: bool = True) -> None:
        """Persist indexes, fsync, and mark the shutdown clean so the next open skips the CRC scan.

        `sync=False` (a broker closing an idle log to free its descriptor while the fsync
        policy is not "always") skips the fsyncs: a process crash loses nothing, since the
        files are in the page cache; after a power cut the trusted reopen still walks the
        batch headers past the last index entry and falls back to a full scan if they do
        not end exactly at the file's end.
        """
        if self._closed:
            return
        self._active.deactivate(sync=sync)
        self._epochs.save(sync=sync)
        # An empty marker needs no tmp+rename; it must only become durable after the rest.
        os.close(os.open(self.directory / CLEAN_SHUTDOWN_FILE, os.O_WRONLY | os.O_CREAT, 0o644))
        if sync:
            fsync_dir(self.directory)
        READ_HANDLES.evict_under(str(self.directory))
        self._closed = True

    def delete(self) -> None:
        """DeleteTopics: close without ceremony and remove the partition directory."""
        self.abandon()
        shutil.rmtree(self.directory, ignore_errors=True)

    def abandon(self) -> None:
        """Drop descriptors without the clean-shutdown steps, as a crash would.

        For tests of recovery, and for a broker giving up on a log whose disk failed: the
        next open() treats the directory as uncleanly shut down.
        """
        for seg in self._segments:
            seg.close()
        READ_HANDLES.evict_under(str(self.directory))
        self._closed = True

    def __enter__(self) -> "PartitionLog":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
