"""Per-partition transaction index: ongoing transactions, last stable offset, aborted list.

Kafka's ProducerStateManager keeps, per partition, the first offset of every producer's
open transaction; the smallest of them is the last stable offset (LSO) that read_committed
consumers may not pass. A COMMIT/ABORT control batch closes a producer's transaction; an
ABORT adds (producer_id, first_offset, last_offset) to the aborted-transaction index, which
Fetch returns so consumers can drop the aborted records they receive.

This is pure bookkeeping over batch headers (plus the marker type of control batches): it
is fed by live appends and rebuilt from the log on start, so it needs no storage of its own.
"""

from __future__ import annotations

import bisect
import logging
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass(frozen=True, order=True)
class AbortedTxn:
    last_offset: int  # the ABORT marker's offset; first so the list sorts by it
    producer_id: int
    first_offset: int


@dataclass
class PartitionTxnIndex:
    """Open transactions and aborted ranges of one partition."""

    ongoing: dict[int, int] = field(default_factory=dict)  # producer_id -> first offset
    aborted: list[AbortedTxn] = field(default_factory=list)  # sorted by last_offset

    def on_data(self, producer_id: int, base_offset: int) -> None:
        """A transactional data batch was appended at `base_offset`."""
        self.ongoing.setdefault(producer_id, base_offset)

    def on_marker(self, producer_id: int, commit: bool, marker_offset: int) -> int | None:
        """A COMMIT/ABORT marker was appended; returns the closed transaction's first offset."""
        first = self.ongoing.pop(producer_id, None)
        if first is not None and not commit:
            entry = AbortedTxn(marker_offset, producer_id, first)
            i = bisect.bisect_left(self.aborted, entry)
            if i == len(self.aborted) or self.aborted[i] != entry:  # never list one twice
                self.aborted.insert(i, entry)
        return first

    def is_ongoing(self, producer_id: int) -> bool:
        return producer_id in self.ongoing

    def first_unstable_offset(self) -> int | None:
        return min(self.ongoing.values()) if self.ongoing else None

    def last_stable_offset(self, high_watermark: int) -> int:
        first = self.first_unstable_offset()
        return high_watermark if first is None else min(first, high_watermark)

    def aborted_between(self, start: int, end: int) -> list[AbortedTxn]:
        """Aborted transactions overlapping [start, end): last_offset >= start, first < end."""
        i = bisect.bisect_left(self.aborted, AbortedTxn(start, -(2**63), -(2**63)))
        return [a for a in self.aborted[i:] if a.first_offset < end]

    def drop_before(self, log_start_offset: int) -> None:
        """Forget aborted ranges wholly below the log start (removed by retention)."""
        i = bisect.bisect_left(self.aborted, AbortedTxn(log_start_offset, -(2**63), -(2**63)))
        if i:
            del self.aborted[:i]
