"""Partition logs open on first use, within a file-descriptor budget.

Why: every open PartitionLog holds a descriptor (its active segment). A broker that opened
every partition when it started or created a topic ran out of descriptors at ~20,000
partitions, and then failed half-way through a CreateTopics, a Metadata or its own
restart. So partitions are opened lazily, by the first request that needs their log, and
the pool closes the least recently used ones (cleanly: indexes written, fsynced, marked
clean, so the next open takes the trusted fast path) whenever more than `capacity` are
open. If the process still meets EMFILE/ENFILE (sockets and journals use descriptors too),
the pool closes half of what it holds plus the shared read handles and tries once more.

Closing happens only inside `acquire` (opening another partition) and `close_idle`, both
on the event loop, so a handler that uses one log at a time between awaits never sees its
log closed under it: Produce, Fetch and the rest touch one partition's log, then the next.
"""

from __future__ import annotations

import errno
import logging
import resource
from collections import OrderedDict
from typing import TYPE_CHECKING, Iterator

from cluster.log import PartitionLog
from cluster.log.handles import READ_HANDLES

if TYPE_CHECKING:
    from cluster.broker.partition import Partition

log = logging.getLogger(__name__)

MIN_CAPACITY = 16
# A process that may raise its own soft limit does (as the JVM does for Kafka), up to this.
RAISE_SOFT_LIMIT_TO = 1 << 20


def descriptor_limit() -> int:
    """The soft RLIMIT_NOFILE after raising it towards the hard limit where allowed."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = RAISE_SOFT_LIMIT_TO if hard == resource.RLIM_INFINITY else min(hard, RAISE_SOFT_LIMIT_TO)
    if soft != resource.RLIM_INFINITY and soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            log.info("raised the open-file limit from %d to %d", soft, want)
            soft = want
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-file limit from %d: %s", soft, exc)
    return RAISE_SOFT_LIMIT_TO if soft == resource.RLIM_INFINITY else soft


def budgets(limit: int) -> tuple[int, int]:
    """(open partition logs, cached read handles) for a descriptor limit: half for logs, an
    eighth (at most 256) for read handles, the rest for sockets, journals and Python."""
    return max(MIN_CAPACITY, limit // 2), max(8, min(256, limit // 8))


def range_budget(limit: int) -> int:
    """Descriptors for Fetch replies in flight by sendfile (cluster/log/file_range.py): a
    sixteenth of the limit, at most 256; past it, replies read their bytes instead."""
    return max(8, min(256, limit // 16))


class LogPool:
    """Which partitions have their log open, least recently used first."""

    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self._open: OrderedDict[Partition, None] = OrderedDict()
        self.opened = 0  # counters for logs and tests
        self.closed = 0

    def __len__(self) -> int:
        return len(self._open)

    def open_partitions(self) -> list[Partition]:
        return list(self._open)

    def touch(self, part: Partition) -> None:
        self._open.move_to_end(part)

    def acquire(self, part: Partition) -> PartitionLog:
        """Open `part`'s log (closing the least recently used beyond capacity)."""
        self._make_room(self.capacity - 1, keep=part)
        try:
            plog = PartitionLog.open(part.directory, part.config)
        except OSError as exc:
            if exc.errno not in (errno.EMFILE, errno.ENFILE):
                raise
            log.warning("out of file descriptors with %d logs open: closing half and retrying",
                        len(self._open))
            self._make_room(len(self._open) // 2, keep=part)
            READ_HANDLES.close_all()
            plog = PartitionLog.open(part.directory, part.config)
        self._open[part] = None
        self.opened += 1
        return plog

    def _make_room(self, keep_at_most: int, keep: Partition | None = None) -> None:
        while len(self._open) > max(0, keep_at_most):
            victim = next(iter(self._open))
            if victim is keep:
                self._open.move_to_end(victim)
                if len(self._open) == 1:
                    return
                continue
            # Evictions fsync only where the policy promises it; shutdown always does.
            self.release(victim, sync=victim.config.fsync == "always")

    def release(self, part: Partition, *, sync: bool = True) -> None:
        """Close `part`'s log cleanly if it is open; the next use reopens it."""
        if part in self._open:
            del self._open[part]
            part.detach_log(clean=True, sync=sync)
            self.closed += 1

    def forget(self, part: Partition) -> None:
        """A deleted partition: drop its descriptors without the clean-shutdown work."""
        if part in self._open:
            del self._open[part]
            part.detach_log(clean=False)

    def close_all(self) -> None:
        for part in list(self._open):
            try:
                self.release(part)
            except Exception:
                log.exception("closing %s-%d failed", part.topic, part.index)

    def __iter__(self) -> Iterator[Partition]:
        return iter(list(self._open))
