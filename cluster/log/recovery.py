"""Opening a partition directory: find segments, check or rebuild them, read checkpoints.

After an unclean shutdown only the last segment is CRC-scanned (rolled segments were
fsynced when they rolled); any segment whose index is missing or damaged is scanned and
re-indexed too. A corrupt batch in a middle segment cuts the log there: later segments are
deleted, since a log must stay contiguous (Kafka does the same).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from .config import LogConfig
from .epoch_cache import LeaderEpochCache
from .files import INDEX_SUFFIX, LOG_SUFFIX, TIMEINDEX_SUFFIX, fsync_dir, parse_segment_name, unlink_quietly
from .segment import Segment

logger = logging.getLogger(__name__)

LOG_START_FILE = "log-start-offset"
CLEAN_SHUTDOWN_FILE = ".clean-shutdown"


@dataclass
class Recovered:
    """Everything PartitionLog needs from disk; the last segment is active."""

    segments: list[Segment]
    log_start: int
    epochs: LeaderEpochCache
    clean: bool


def recover(directory: Path, config: LogConfig) -> Recovered:
    directory.mkdir(parents=True, exist_ok=True)
    marker = directory / CLEAN_SHUTDOWN_FILE
    clean = marker.exists()
    if clean:
        os.unlink(marker)
        fsync_dir(directory)  # a crash from now on must not look clean
    bases = sorted(b for b in (parse_segment_name(n) for n in os.listdir(directory)) if b is not None)
    _remove_strays(directory, set(bases))
    interval = config.index_interval_bytes
    segments: list[Segment] = []
    for i, base in enumerate(bases[:-1]):
        seg, ok = Segment.load_inactive(directory, base)
        segments.append(seg)
        if not ok and seg.rebuild_inactive_indexes(interval, sync=True):
            for later in reversed(bases[i + 1 :]):
                logger.warning("recovery: deleting segment %d of %s after a corrupt earlier one",
                               later, directory)
                Segment(directory, later).delete()
            bases = bases[: i + 1]
            break
    if bases:
        last = segments.pop() if len(segments) == len(bases) else Segment(directory, bases[-1])
        last.activate(trust_indexes=clean, index_interval=interval)
        # segment.ms counts from here: when the segment's first append happened is not on disk.
        last.first_append_ms = int(time.time() * 1000) if last.size else None
        segments.append(last)
    log_start = read_log_start(directory)
    if not segments:  # a lost empty segment is simply recreated: no dir fsync needed
        segments.append(Segment.create(directory, log_start or 0))
    epochs = LeaderEpochCache.load(directory)
    if not clean:  # the checkpoint may miss epochs that began in the last segment
        for _, h in segments[-1].iter_from(segments[-1].base_offset):
            epochs.assign(h.partition_leader_epoch, h.base_offset)
    return Recovered(segments, max(log_start or 0, segments[0].base_offset), epochs, clean)


def _remove_strays(directory: Path, bases: set[int]) -> None:
    """Leftover temp files and indexes whose .log is gone (a crash mid-delete)."""
    for name in os.listdir(directory):
        if name.endswith(".tmp"):
            unlink_quietly(directory / name)
        for suffix in (INDEX_SUFFIX, TIMEINDEX_SUFFIX):
            if name.endswith(suffix) and parse_segment_name(name[: -len(suffix)] + LOG_SUFFIX) not in bases:
                unlink_quietly(directory / name)


def read_log_start(directory: Path) -> int | None:
    try:
        return int((directory / LOG_START_FILE).read_text().strip())
    except FileNotFoundError:
        return None
    except ValueError:
        logger.warning("%s: unreadable %s, using the first segment", directory, LOG_START_FILE)
        return None
