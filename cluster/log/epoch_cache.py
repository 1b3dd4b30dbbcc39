"""Leader-epoch cache: which leader epoch started at which offset, for OffsetForLeaderEpoch.

Persisted in Kafka's `leader-epoch-checkpoint` text format (version, count, "epoch offset"
lines), rewritten atomically by `save()`, which the log calls when a segment rolls, on
flush and on close. Changes in between need no fsync of their own: every batch header
carries its leader epoch, so after a crash the log replays the last segment's headers
(the only part the checkpoint can be missing) and re-applies truncations on open.
"""

from __future__ import annotations

import bisect
import logging
from dataclasses import dataclass, field
from pathlib import Path

from .files import atomic_write

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = "leader-epoch-checkpoint"
UNDEFINED_EPOCH = -1
UNDEFINED_EPOCH_OFFSET = -1


@dataclass
class EpochEntry:
    epoch: int
    start_offset: int


@dataclass
class LeaderEpochCache:
    """Ordered (epoch, start offset) entries; both columns strictly increase."""

    path: Path
    entries: list[EpochEntry] = field(default_factory=list)
    dirty: bool = False

    @classmethod
    def load(cls, directory: Path) -> "LeaderEpochCache":
        path = directory / CHECKPOINT_NAME
        cache = cls(path)
        try:
            lines = path.read_text().split("\n")
        except FileNotFoundError:
            return cache
        try:
            if int(lines[0]) != 0:
                raise ValueError(f"unknown version {lines[0]}")
            count = int(lines[1])
            for line in lines[2 : 2 + count]:
                epoch, offset = line.split()
                cache.entries.append(EpochEntry(int(epoch), int(offset)))
            if len(cache.entries) != count:
                raise ValueError("fewer entries than announced")
        except (ValueError, IndexError) as e:
            # Written atomically, so this means outside damage; the cache only speeds up
            # follower truncation, so starting empty is safe.
            logger.warning("ignoring damaged %s: %s", path, e)
            cache.entries = []
        return cache

    def save(self, *, sync: bool = True) -> None:
        """Write the checkpoint atomically if anything changed since the last save."""
        if not self.dirty:
            return
        lines = ["0", str(len(self.entries))] + [f"{e.epoch} {e.start_offset}" for e in self.entries]
        atomic_write(self.path, ("\n".join(lines) + "\n").encode(), sync=sync)
        self.dirty = False

    @property
    def latest_epoch(self) -> int:
        return self.entries[-1].epoch if self.entries else UNDEFINED_EPOCH

    def assign(self, epoch: int, start_offset: int) -> None:
        """Note that `epoch` begins at `start_offset` (a no-op unless epoch is new)."""
        if epoch < 0 or (self.entries and epoch <= self.entries[-1].epoch):
            return
        if self.entries and start_offset < self.entries[-1].start_offset:
            logger.warning(
                "%s: epoch %d starts at %d, before epoch %d at %d; dropping the later entry",
                self.path, epoch, start_offset, self.entries[-1].epoch, self.entries[-1].start_offset,
            )
            while self.entries and self.entries[-1].start_offset >= start_offset:
                self.entries.pop()
        self.entries.append(EpochEntry(epoch, start_offset))
        self.dirty = True

    def end_offset_for(self, epoch: int, log_end_offset: int) -> tuple[int, int]:
        """Kafka's LeaderEpochFileCache.endOffsetFor: (largest epoch <= requested, its end)."""
        if epoch == UNDEFINED_EPOCH or not self.entries:
            return UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET
        if epoch == self.entries[-1].epoch:
            return epoch, log_end_offset
        epochs = [e.epoch for e in self.entries]
        hi = bisect.bisect_right(epochs, epoch)
        if hi == len(epochs):  # requested epoch is newer than anything we know
            return UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET
        higher = self.entries[hi]
        if hi == 0:  # older than the first epoch we know
            return epoch, higher.start_offset
        return self.entries[hi - 1].epoch, higher.start_offset

    def truncate_from_end(self, end_offset: int) -> None:
        """Forget epochs that start at or after `end_offset` (the log was truncated there)."""
        keep = [e for e in self.entries if e.start_offset < end_offset]
        if len(keep) != len(self.entries):
            self.entries = keep
            self.dirty = True

    def truncate_from_start(self, start_offset: int) -> None:
        """The log now starts at `start_offset`: drop epochs wholly below it, clamp the one across it."""
        below = [i for i, e in enumerate(self.entries) if e.start_offset < start_offset]
        if not below:
            return
        last_below = below[-1]
        self.entries = self.entries[last_below:]
        self.entries[0] = EpochEntry(self.entries[0].epoch, start_offset)
        self.dirty = True

    def clear(self) -> None:
        if self.entries or self.path.exists():
            self.entries = []
            self.dirty = True
            self.save()
