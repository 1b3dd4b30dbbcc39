"""One partition as the broker sees it: its log, leader epoch and fetch waiters.

The waiters let long-polling Fetch requests sleep until data arrives instead of polling:
an append wakes every future parked on the partition.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from cluster.log import PartitionLog


@dataclass(eq=False)
class Partition:
    topic: str
    index: int
    log: PartitionLog
    leader_epoch: int
    _waiters: set[asyncio.Future[None]] = field(default_factory=set)

    @property
    def high_watermark(self) -> int:
        # Single replica: everything appended is committed.
        return self.log.log_end_offset

    def add_waiter(self, fut: asyncio.Future[None]) -> None:
        self._waiters.add(fut)

    def remove_waiter(self, fut: asyncio.Future[None]) -> None:
        self._waiters.discard(fut)

    def notify(self) -> None:
        for fut in self._waiters:
            if not fut.done():
                fut.set_result(None)
        self._waiters.clear()
