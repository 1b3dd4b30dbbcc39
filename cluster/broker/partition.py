"""One partition as the broker sees it: its log (opened on first use), leader epoch and
fetch waiters.

The log is opened through the broker's LogPool the first time a request needs it and may
be closed again when the pool needs its descriptor (see log_pool.py); everything else
about a partition (Metadata's view, waiters, producer state) lives here and never needs a
descriptor. The waiters let long-polling Fetch requests sleep until data arrives instead
of polling: an append wakes every future parked on the partition.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from cluster.log import LogConfig, PartitionLog
from cluster.log.files import parse_segment_name
from cluster.replication.follower import FollowerPartition
from cluster.replication.leader import LeaderPartition, ReplicationConfig
from cluster.replication.state import PartitionAssignment

if TYPE_CHECKING:
    from cluster.broker.log_pool import LogPool


@dataclass(eq=False)
class Partition:
    topic: str
    index: int
    leader_epoch: int
    data_dir: Path  # the broker's; the partition's own directory is derived when needed
    config: LogConfig
    pool: LogPool
    _log: PartitionLog | None = None
    # Segments the log had when last closed (None: not opened since the broker started).
    # Retention and compaction only ever touch rolled segments, so a closed log with one
    # segment has nothing for them to do and need not be reopened.
    segments_when_closed: int | None = None
    _waiters: set[asyncio.Future[None]] = field(default_factory=set)
    # Leader state when this broker leads a partition with followers (cluster/replication);
    # None for a single replica, whose high watermark is its log end.
    replica: LeaderPartition | None = None
    # Follower state when this broker follows the partition (cluster/broker/replica_fetcher.py).
    follower: FollowerPartition | None = None

    @property
    def directory(self) -> Path:
        return self.data_dir / f"{self.topic}-{self.index}"

    @property
    def log(self) -> PartitionLog:
        """The partition's log, opened now if it is not (may raise OSError)."""
        if self._log is None:
            self._log = self.pool.acquire(self)
        else:
            self.pool.touch(self)
        return self._log

    @property
    def open_log(self) -> PartitionLog | None:
        """The log if it is open, without opening it or counting as a use."""
        return self._log

    def detach_log(self, *, clean: bool, sync: bool = True) -> None:
        """Called by the pool only: close (cleanly, fsynced if `sync`) or abandon the log."""
        plog, self._log = self._log, None
        if plog is None:
            return
        self.segments_when_closed = plog.segment_count
        if clean:
            plog.close(sync=sync)
        else:
            plog.abandon()

    def needs_housekeeping(self) -> bool:
        """Whether retention or compaction could have work here (cheap for closed logs)."""
        if self._log is not None:
            return True
        if self.segments_when_closed is None:
            try:
                names = os.listdir(self.directory)
            except FileNotFoundError:
                names = []
            self.segments_when_closed = sum(1 for n in names if parse_segment_name(n) is not None)
        return self.segments_when_closed > 1

    def set_config(self, config: LogConfig) -> None:
        self.config = config
        if self._log is not None:
            self._log.update_config(config)

    @property
    def high_watermark(self) -> int:
        if self.replica is not None:
            return self.replica.high_watermark
        if self.follower is not None:  # what the leader told it, capped by its own end
            return self.follower.high_watermark
        return self.log.log_end_offset  # single replica: everything appended is committed

    def lead(self, broker_id: int, assignment: PartitionAssignment, config: ReplicationConfig,
             *, high_watermark: int, now_ms: int) -> LeaderPartition:
        """Become the leader of `assignment.leader_epoch`, with followers: the epoch is
        recorded in the log's epoch cache at its end first, then the leader state starts
        from `high_watermark` (what this replica knew committed)."""
        log = self.log
        log.begin_leader_epoch(assignment.leader_epoch)
        self.leader_epoch = assignment.leader_epoch
        self.follower = None
        self.replica = LeaderPartition.become_leader(
            self.topic, self.index, broker_id, assignment, config,
            log_end_offset=log.log_end_offset, high_watermark=high_watermark, now_ms=now_ms)
        self.notify()
        return self.replica

    def add_waiter(self, fut: asyncio.Future[None]) -> None:
        self._waiters.add(fut)

    def remove_waiter(self, fut: asyncio.Future[None]) -> None:
        self._waiters.discard(fut)

    def notify(self) -> None:
        for fut in self._waiters:
            if not fut.done():
                fut.set_result(None)
        self._waiters.clear()


async def wait_for_change(parts: "Iterable[Partition]", timeout: float) -> None:
    """Sleep until any of `parts` is notified (an append, a high watermark move) or the
    timeout passes: the one long-poll wait Fetch (min_bytes) and Produce (acks=all) share."""
    fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    parts = list(parts)
    for part in parts:
        part.add_waiter(fut)
    try:
        await asyncio.wait_for(fut, timeout)
    except asyncio.TimeoutError:
        pass
    finally:
        for part in parts:
            part.remove_waiter(fut)
