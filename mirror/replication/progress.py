"""Live progress of one link, shared by the copier, status, metrics and failover.

Plain data: the copier writes it, readers only read. One `PartitionProgress` per source
partition; `Alarm`s are the events a user must see (records lost to source retention,
a recreated source topic) and are kept until the daemon restarts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

TP = tuple[str, int]
#: Partition states that need an operator: `dcmirror status` exits non-zero while any is shown.
STOPPED_STATES = ("conflict", "error")


@dataclass
class PartitionProgress:
    topic: str
    partition: int
    target_topic: str
    position: int = -1  # next upstream offset to copy
    source_end: int = -1  # source high watermark at the last fetch
    source_start: int = -1
    records: int = 0
    bytes: int = 0
    batches: int = 0
    last_copied_ms: int = 0  # wall clock of the last append
    oldest_unmirrored_ts: int = -1  # timestamp of the first batch not yet mirrored, -1 if caught up
    state: str = "starting"  # starting | running | retrying | conflict | error
    error: str = ""  # why, for retrying, conflict and error

    @property
    def lag(self) -> int:
        if self.position < 0 or self.source_end < 0:
            return -1
        return max(0, self.source_end - self.position)


@dataclass(frozen=True)
class Alarm:
    kind: str  # "records-lost" | "topic-recreated" | "source-truncated"
    topic: str
    partition: int
    message: str
    count: int = 0
    at_ms: int = field(default_factory=lambda: int(time.time() * 1000))


@dataclass
class LinkProgress:
    name: str
    mode: str = "unknown"
    state: str = "starting"
    error: str = ""  # why the link is retrying (empty otherwise)
    partitions: dict[TP, PartitionProgress] = field(default_factory=dict)
    alarms: list[Alarm] = field(default_factory=list)
    retries: int = 0
    last_checkpoint_ms: dict[str, int] = field(default_factory=dict)
    #: translation: per source partition, the target records the link's writers could not
    #: rule out as duplicates (from the offset syncs at start, plus what this process added)
    possible_duplicates: dict[TP, int] = field(default_factory=dict)

    def add_possible_duplicates(self, tp: TP, count: int) -> None:
        if count:
            self.possible_duplicates[tp] = self.possible_duplicates.get(tp, 0) + count

    def partition(self, topic: str, partition: int, target_topic: str) -> PartitionProgress:
        key = (topic, partition)
        p = self.partitions.get(key)
        if p is None:
            p = PartitionProgress(topic, partition, target_topic)
            self.partitions[key] = p
        return p
