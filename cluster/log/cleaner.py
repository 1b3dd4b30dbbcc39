"""Log compaction, segment level: cleaning passes over a PartitionLog and crash-safe swaps.

Why a separate module: `compaction.py` decides per batch (pure); this one owns the files.
A pass, as in Kafka's LogCleaner:

1. Plan. The cleanable part is the inactive segments from the first one, stopping at the
   first segment younger than min.compaction.lag.ms (the active segment is never cleaned).
   Its *dirty* part starts at the checkpointed first-dirty offset. A pass runs when
   dirty bytes / cleanable bytes >= min.cleanable.dirty.ratio, when the first dirty batch
   is older than max.compaction.lag.ms, or when a stamped delete horizon has passed.
2. Map the dirty segments (key -> latest offset), at most `max_map_keys` keys; the pass
   then cleans up to the end of the last mapped segment.
3. Rewrite segments [first, end of mapped) in groups (consecutive segments merged while
   their sizes add up to at most segment.bytes). Each group is written to
   `<base>.log.cleaned`, fsynced, renamed to `<base>.log.<end>.swap` (the commit point,
   made durable by a directory fsync; `end` is where the replaced segments end), then the
   replaced segments' files are deleted, the swap file renamed over `<base>.log`, and fresh
   indexes written. Crash recovery (`recover_cleaner_files`) finishes any committed swap
   (deletes the segments with a base in [base, end), renames the swap file) and deletes
   `.cleaned` files, so a crash leaves each group either all old or all new. A group may
   come out empty: it then stays as an empty segment until a later pass merges it.
4. Save the checkpoint (`cleaner-checkpoint`: first dirty offset and delete horizons).

Throttling: a pass is a generator that yields after each segment it reads and after every
STEP_BYTES within one, so the broker's housekeeping advances it a few steps per tick. A
batch big enough that decoding its records would hold the loop (HEAVY_RECORDS records or
HEAVY_BYTES) is yielded as an `Offload` instead: the broker's driver (`Cleaner.astep`)
runs it on the batch-check worker thread, other drivers inline. Between steps the log may change
(appends, rolls, retention, truncation); on every resume the pass checks that the segments
it planned on are still there, inactive and unchanged, and abandons itself otherwise.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Generator, Iterator

from cluster.wire.record_batch import BatchHeader, read_header

from .compaction import OffsetMap, TxnView, filter_batch
from .files import (
    INDEX_SUFFIX,
    LOG_SUFFIX,
    SEGMENT_SUFFIXES,
    TIMEINDEX_SUFFIX,
    atomic_write,
    fsync_dir,
    parse_segment_name,
    pwrite_all,
    segment_name,
    unlink_quietly,
)
from .handles import READ_HANDLES
from .segment import MAX_RELATIVE_OFFSET, Segment

if TYPE_CHECKING:
    from .partition_log import PartitionLog

logger = logging.getLogger(__name__)

CHECKPOINT_FILE = "cleaner-checkpoint"
CLEANED_SUFFIX = ".cleaned"
SWAP_SUFFIX = ".swap"
DEFAULT_MAX_MAP_KEYS = 1_000_000
STEP_BYTES = 1 << 20  # a pass also yields inside a segment after reading this much
# A batch this big is decoded off the event loop when the driver can (Cleaner.astep): its
# records become Python objects, which for up to 262,144 records takes most of a second.
HEAVY_RECORDS = 2048
HEAVY_BYTES = 256 << 10


@dataclass(frozen=True)
class Offload:
    """Yielded by a pass: "run `fn` and send me its result", off the loop if the driver can.

    The work is pure (one batch's bytes and the pass's own offset map), so a worker thread
    may run it while the loop serves clients; the pass re-checks its segments afterwards.
    """

    fn: Callable[[], Any]


def _heavy(h: BatchHeader) -> bool:
    return h.records_count > HEAVY_RECORDS or h.size > HEAVY_BYTES


Step = Generator["Offload | None", Any, "CleanStats | None"]

# Tests set this to raise at a named step of a swap, leaving the files as a crash would.
crash_hook: Callable[[str], None] | None = None


def _step(name: str) -> None:
    if crash_hook is not None:
        crash_hook(name)


# ---------------------------------------------------------------- checkpoint
@dataclass
class CleanerCheckpoint:
    """Where the dirty part starts, and the delete horizon of batches that keep tombstones."""

    first_dirty: int = 0
    horizons: dict[int, int] = field(default_factory=dict)  # batch base offset -> ms

    @classmethod
    def load(cls, directory: Path) -> "CleanerCheckpoint":
        """The saved checkpoint; a missing or unreadable one means "all dirty, no horizons"
        (safe: more cleaning work, tombstones kept longer)."""
        try:
            data = json.loads((directory / CHECKPOINT_FILE).read_text())
            return cls(int(data["first_dirty"]),
                       {int(k): int(v) for k, v in data.get("horizons", {}).items()})
        except FileNotFoundError:
            return cls()
        except (ValueError, KeyError, TypeError, AttributeError):
            logger.warning("%s: unreadable %s, cleaning from the start", directory, CHECKPOINT_FILE)
            return cls()

    def save(self, directory: Path) -> None:
        body = {"version": 1, "first_dirty": self.first_dirty,
                "horizons": {str(k): v for k, v in sorted(self.horizons.items())}}
        atomic_write(directory / CHECKPOINT_FILE, json.dumps(body).encode())


def forget_checkpoint(directory: Path) -> None:
    """After a truncation: offsets may be reused, so first-dirty and horizons no longer hold.

    Without a checkpoint the next pass maps the whole log and stamps horizons afresh: more
    work and tombstones kept longer, never a record lost.
    """
    path = directory / CHECKPOINT_FILE
    if path.exists():
        unlink_quietly(path)
        fsync_dir(directory)


# ---------------------------------------------------------------- swaps and recovery
def _swap_path(directory: Path, base: int, end: int) -> Path:
    return directory / f"{segment_name(base, LOG_SUFFIX)}.{end:020d}{SWAP_SUFFIX}"


def _parse_swap_name(name: str) -> tuple[int, int] | None:
    """(base, end) of a `<base>.log.<end>.swap` name, else None."""
    if not name.endswith(SWAP_SUFFIX):
        return None
    parts = name[: -len(SWAP_SUFFIX)].split(".")
    if len(parts) != 3 or parts[1] != LOG_SUFFIX[1:] or not (parts[0].isdigit() and parts[2].isdigit()):
        return None
    if len(parts[0]) != 20 or len(parts[2]) != 20:
        return None
    return int(parts[0]), int(parts[2])


def _cleaned_path(directory: Path, base: int) -> Path:
    return directory / (segment_name(base, LOG_SUFFIX) + CLEANED_SUFFIX)


def _complete_swap(directory: Path, base: int, end: int, old_bases: list[int]) -> None:
    """After the commit point: drop the replaced segments, rename the swap file into place."""
    for b in sorted(old_bases, reverse=True):
        if b == base:
            continue
        for suffix in SEGMENT_SUFFIXES:
            path = directory / segment_name(b, suffix)
            READ_HANDLES.evict(str(path))
            unlink_quietly(path)
        _step("deleted-old-segment")
    for suffix in (INDEX_SUFFIX, TIMEINDEX_SUFFIX):  # stale for the new .log: never keep them
        path = directory / segment_name(base, suffix)
        READ_HANDLES.evict(str(path))
        unlink_quietly(path)
    _step("dropped-indexes")
    log_path = directory / segment_name(base, LOG_SUFFIX)
    READ_HANDLES.evict(str(log_path))
    os.replace(_swap_path(directory, base, end), log_path)
    fsync_dir(directory)


def recover_cleaner_files(directory: Path) -> None:
    """Before a log opens: finish committed swaps, delete uncommitted cleaning output."""
    if not directory.is_dir():
        return
    names = sorted(os.listdir(directory))
    changed = False
    for name in names:
        if name.endswith(CLEANED_SUFFIX):
            logger.info("recovery: deleting unfinished cleaner output %s/%s", directory, name)
            unlink_quietly(directory / name)
            changed = True
    bases = [b for b in (parse_segment_name(n) for n in names) if b is not None]
    for name in names:
        if not name.endswith(SWAP_SUFFIX):
            continue
        changed = True
        parsed = _parse_swap_name(name)
        if parsed is None:
            logger.warning("recovery: deleting unknown swap file %s/%s", directory, name)
            unlink_quietly(directory / name)
            continue
        base, end = parsed
        old = [b for b in bases if base <= b < end]
        logger.info("recovery: completing the swap of cleaned segment %d over %s in %s",
                    base, old, directory)
        _complete_swap(directory, base, end, old)
    if changed:
        fsync_dir(directory)


def _swap_in(log: "PartitionLog", group: list[Segment], size: int,
             headers: list[tuple[int, BatchHeader]]) -> Segment:
    """Commit the fsynced `.cleaned` file of `group` and make it the segment in the log."""
    directory = log.directory
    base = group[0].base_offset
    end = log.segments[log.segments.index(group[-1]) + 1].base_offset
    _step("cleaned-written")
    os.replace(_cleaned_path(directory, base), _swap_path(directory, base, end))
    fsync_dir(directory)  # the commit point
    _step("committed")
    _complete_swap(directory, base, end, [s.base_offset for s in group])
    _step("swapped")  # the new .log is in place, its indexes not yet
    seg = Segment(directory, base)
    seg.size = size
    seg._rebuild_from(headers, log.config.index_interval_bytes)
    seg._write_indexes(sync=True)
    seg.offset_index = seg.time_index = None  # inactive: lookups go to the files
    seg.dirty = False
    log.replace_segments(group, seg)
    return seg


# ---------------------------------------------------------------- passes
@dataclass
class CleanStats:
    """What one pass did (for logs and tests)."""

    segments_before: int = 0
    segments_after: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    records_removed: int = 0
    batches_rebuilt: int = 0
    batches_dropped: int = 0
    first_dirty: int = 0  # the next pass's dirty part starts here


def cleanable_segments(log: "PartitionLog", now_ms: int, stable_end: int | None = None) -> list[Segment]:
    """Inactive segments from the first, up to the first younger than min.compaction.lag.ms
    or reaching `stable_end` (the first offset of a transaction still open)."""
    lag = log.config.min_compaction_lag_ms
    out = []
    segs = log.segments
    for i, seg in enumerate(segs[:-1]):
        if seg.size and lag and now_ms - seg.max_timestamp < lag:
            break
        if stable_end is not None and segs[i + 1].base_offset > stable_end:
            break
        out.append(seg)
    return out


def scan_transactions(log: "PartitionLog") -> TxnView:
    """Walk every batch header (reading only transaction markers) for TxnView."""
    view = TxnView()
    for seg in log.segments:
        for pos, h in seg.iter_from(seg.base_offset):
            view.feed(h, seg.read_batch(pos, h) if h.is_control and h.is_transactional else None)
    return view


def _batches(seg: Segment) -> Iterator[tuple[BatchHeader, bytes]]:
    for pos, h in seg.iter_from(seg.base_offset):
        yield h, seg.read_batch(pos, h)


def _next_base(log: "PartitionLog", i: int) -> int:
    return log.segments[i + 1].base_offset


def _plan(log: "PartitionLog", ckpt: CleanerCheckpoint, now_ms: int,
          stable_end: int | None) -> tuple[list[Segment], int] | None:
    """(cleanable segments, index of the first dirty one), or None if no pass is due."""
    segs = cleanable_segments(log, now_ms, stable_end)
    if not segs:
        return None
    first_dirty = max(ckpt.first_dirty, log.log_start_offset)
    dirty_from = next((i for i in range(len(segs)) if _next_base(log, i) > first_dirty), len(segs))
    clean_bytes = sum(s.size for s in segs[:dirty_from])
    dirty_bytes = sum(s.size for s in segs[dirty_from:])
    cfg = log.config
    expired = any(h <= now_ms for h in ckpt.horizons.values())
    if dirty_bytes == 0:
        return (segs, dirty_from) if expired else None
    if dirty_bytes / (clean_bytes + dirty_bytes) >= cfg.min_cleanable_dirty_ratio or expired:
        return segs, dirty_from
    first = next((h for _, h in segs[dirty_from].iter_from(segs[dirty_from].base_offset)), None)
    if first is not None and first.base_timestamp >= 0 and now_ms - first.base_timestamp > cfg.max_compaction_lag_ms:
        return segs, dirty_from
    return None


def _groups(log: "PartitionLog", count: int) -> list[list[Segment]]:
    """The first `count` segments in runs to merge: sizes within segment.bytes, offsets int32."""
    limit = log.config.segment_bytes
    segs = log.segments
    groups: list[list[Segment]] = []
    cur: list[Segment] = []
    cur_size = 0
    for i in range(count):
        seg = segs[i]
        span = _next_base(log, i) - 1 - (cur[0].base_offset if cur else seg.base_offset)
        if cur and (cur_size + seg.size > limit or span > MAX_RELATIVE_OFFSET):
            groups.append(cur)
            cur, cur_size = [], 0
        cur.append(seg)
        cur_size += seg.size
    if cur:
        groups.append(cur)
    return groups


class _Abandoned(Exception):
    """The log changed under a pass in a way that invalidates its plan."""


class _Guard:
    """Remembers the planned segments (identity and size) to detect changes between steps."""

    def __init__(self, log: "PartitionLog", segs: list[Segment]) -> None:
        self.log = log
        self.sizes = {id(s): (s, s.size) for s in segs}

    def replace(self, old: list[Segment], new: Segment) -> None:
        for s in old:
            self.sizes.pop(id(s), None)
        self.sizes[id(new)] = (new, new.size)

    def check(self) -> None:
        if self.log.closed:
            raise _Abandoned("the log was closed")
        present = {id(s) for s in self.log.segments}
        for key, (seg, size) in self.sizes.items():
            if key not in present or seg.active or seg.size != size:
                raise _Abandoned(f"segment {seg.base_offset} changed")


def clean_steps(log: "PartitionLog", now_ms: int, *,
                max_map_keys: int = DEFAULT_MAX_MAP_KEYS) -> Step:
    """One cleaning pass, yielding after each segment read; returns its stats (None: no pass)."""
    directory = log.directory
    cfg = log.config
    ckpt = CleanerCheckpoint.load(directory)
    if _plan(log, ckpt, now_ms, None) is None:  # cheap gate before walking every header
        return None
    view = scan_transactions(log)
    plan = _plan(log, ckpt, now_ms, view.first_unstable)
    if plan is None:
        return None
    segs, dirty_from = plan
    guard = _Guard(log, segs)
    stats = CleanStats(segments_before=len(segs), bytes_before=sum(s.size for s in segs))
    try:
        # Phase 1: the offset map over the dirty segments.
        omap = OffsetMap()
        mapped = dirty_from
        for i in range(dirty_from, len(segs)):
            if i > dirty_from and len(omap) >= max_map_keys:
                break
            done = 0
            for h, raw in _batches(segs[i]):
                outcome = view.outcome(h)
                if _heavy(h):
                    yield Offload(lambda h=h, raw=raw, outcome=outcome: omap.add_batch(h, raw, outcome))
                    guard.check()
                else:
                    omap.add_batch(h, raw, outcome)
                done += h.size
                if done >= STEP_BYTES:
                    done = 0
                    yield
                    guard.check()
            mapped = i + 1
            yield
            guard.check()
        mapped = max(mapped, 1)
        end_offset = _next_base(log, mapped - 1)
        retained: set[int] = set()  # base offsets of the batches this pass keeps
        horizons = {k: v for k, v in ckpt.horizons.items() if k >= end_offset}
        # Phase 2: rewrite [first segment, end_offset) group by group.
        for group in _groups(log, mapped):
            yield from _clean_group(log, group, omap, ckpt, horizons, view, retained,
                                    now_ms, stats, guard)
    except _Abandoned as exc:
        logger.info("%s: cleaning pass abandoned: %s", directory, exc)
        return None
    stats.first_dirty = end_offset
    stats.segments_after = len(cleanable_segments(log, now_ms))
    stats.bytes_after = sum(s.size for s in log.segments if s.base_offset < end_offset)
    CleanerCheckpoint(end_offset, horizons).save(directory)
    if cfg.compact:
        logger.info(
            "%s: cleaned up to offset %d: %d records removed, %d -> %d bytes",
            directory, end_offset, stats.records_removed, stats.bytes_before, stats.bytes_after,
        )
    return stats


def _clean_group(log: "PartitionLog", group: list[Segment], omap: OffsetMap,
                 ckpt: CleanerCheckpoint, horizons: dict[int, int], view: TxnView,
                 retained: set[int], now_ms: int, stats: CleanStats,
                 guard: _Guard) -> Generator[Offload | None, Any, None]:
    directory = log.directory
    if len(group) == 1 and group[0].size == 0:
        return
    cleaned = _cleaned_path(directory, group[0].base_offset)
    fd = os.open(cleaned, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    committed = False
    try:
        pos = 0
        headers: list[tuple[int, BatchHeader]] = []
        changed = len(group) > 1
        for seg in group:
            done = 0
            for h, raw in _batches(seg):
                done += h.size
                if done >= STEP_BYTES:
                    done = 0
                    yield
                    guard.check()
                horizon = ckpt.horizons.get(h.base_offset)
                keep_header = h.producer_id >= 0 and view.last_of_producer.get(h.producer_id) == h.base_offset
                outcome = view.outcome(h)
                if outcome == "marker" and not keep_header and not any(
                        b in retained for b in view.marker_data[h.base_offset]):
                    # Its transaction has no batch left: the marker goes like a tombstone.
                    if horizon is not None and now_ms >= horizon:
                        changed = True
                        stats.batches_dropped += 1
                        continue
                    horizons[h.base_offset] = horizon if horizon is not None else now_ms + log.config.delete_retention_ms
                def run(h=h, raw=raw, horizon=horizon, keep_header=keep_header, outcome=outcome):
                    return filter_batch(h, raw, omap, now_ms=now_ms, horizon_ms=horizon,
                                        keep_header=keep_header, outcome=outcome)
                if _heavy(h):
                    f = yield Offload(run)
                    guard.check()
                else:
                    f = run()
                stats.records_removed += f.removed
                if f.changed:
                    changed = True
                    if f.data is None:
                        stats.batches_dropped += 1
                        continue
                    stats.batches_rebuilt += 1
                if f.tombstones:
                    horizons[h.base_offset] = horizon if horizon is not None else now_ms + log.config.delete_retention_ms
                assert f.data is not None
                retained.add(h.base_offset)
                nh = read_header(f.data) if f.changed else h
                pwrite_all(fd, f.data, pos)
                headers.append((pos, nh))
                pos += nh.size
            yield
            guard.check()
        if not changed:
            return  # one segment, nothing to remove: keep the original file
        os.fsync(fd)
        os.close(fd)
        fd = -1
        new = _swap_in(log, group, pos, headers)
        committed = True
        guard.replace(group, new)
    finally:
        if fd >= 0:
            os.close(fd)
        if not committed:
            unlink_quietly(cleaned)


def _run(gen: Step) -> CleanStats | None:
    sent = None
    while True:
        try:
            req = gen.send(sent)
        except StopIteration as stop:
            return stop.value
        sent = req.fn() if isinstance(req, Offload) else None


def clean(log: "PartitionLog", now_ms: int, *, max_map_keys: int = DEFAULT_MAX_MAP_KEYS) -> CleanStats | None:
    """Run one whole pass now (tests, tools); the broker uses Cleaner to spread it out."""
    return _run(clean_steps(log, now_ms, max_map_keys=max_map_keys))


class Cleaner:
    """Drives cleaning passes over one log a few segments per call (broker housekeeping)."""

    def __init__(self, log: "PartitionLog", *, check_interval_ms: int = 1000,
                 max_map_keys: int = DEFAULT_MAX_MAP_KEYS) -> None:
        self.log = log
        self.check_interval_ms = check_interval_ms
        self.max_map_keys = max_map_keys
        self._pass: Step | None = None
        self._next_check_ms = 0

    def step(self, now_ms: int, *, segments: int = 4) -> CleanStats | None:
        """Advance the current pass by up to `segments` steps (a segment, or STEP_BYTES of
        one), starting a pass if one is due. Returns the stats of a pass that finished here.
        Heavy batches are decoded inline (tests, tools); the broker uses `astep`.
        """
        return self._drive(now_ms, segments)

    async def astep(self, now_ms: int, off_loop: Callable[[Callable[[], Any]], Awaitable[Any]], *,
                    segments: int = 4) -> CleanStats | None:
        """`step` for the broker: heavy batches are decoded by `off_loop` (a worker thread)."""
        gen = self._start(now_ms)
        if gen is None:
            return None
        sent: Any = None
        done = 0
        while done < segments:
            try:
                req = gen.send(sent)
            except StopIteration as stop:
                self._pass = None
                return stop.value
            if isinstance(req, Offload):
                sent = await off_loop(req.fn)
                if self._pass is not gen:  # stopped while the worker ran
                    return None
            else:
                sent = None
                done += 1
        return None

    def _start(self, now_ms: int) -> Step | None:
        if not self.log.config.compact or self.log.closed:
            self.stop()
            return None
        if self._pass is None:
            if now_ms < self._next_check_ms:
                return None
            self._next_check_ms = now_ms + self.check_interval_ms
            self._pass = clean_steps(self.log, now_ms, max_map_keys=self.max_map_keys)
        return self._pass

    def _drive(self, now_ms: int, segments: int) -> CleanStats | None:
        gen = self._start(now_ms)
        if gen is None:
            return None
        sent: Any = None
        done = 0
        while done < segments:
            try:
                req = gen.send(sent)
            except StopIteration as stop:
                self._pass = None
                return stop.value
            if isinstance(req, Offload):
                sent = req.fn()
            else:
                sent = None
                done += 1
        return None

    def stop(self) -> None:
        """Abandon a pass in progress (its `.cleaned` file is removed)."""
        if self._pass is not None:
            self._pass.close()
            self._pass = None
