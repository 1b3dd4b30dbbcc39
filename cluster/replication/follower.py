"""The follower's side of one replicated partition: Kafka's fetcher as a state machine.

`FollowerPartition` says what to put in the next Fetch for this partition
(`fetch_request_fields`) and applies the leader's answer (`on_fetch_response`); the
caller owns the connection, the request building across partitions and the waiting.
What it does with an answer follows Kafka's AbstractFetcherThread:
- records: the batches are appended as they are, base offsets and leader epochs kept
  (`PartitionLog.append_preserving`, Kafka's appendAsFollower); each batch's CRC is
  checked first, and a trailing partial batch (the leader's byte limit cut it) is left for
  the next fetch. The high watermark becomes min(leader's, own log end), never lower than
  it was; the log start follows the leader's (its DeleteRecords and retention).
- DivergingEpoch {epoch, end_offset} (KIP-320): the tail after that point is not the
  leader's. If this log knows that epoch, truncate to min(leader's end, own end of the
  epoch) and the logs agree up to there; if it does not, truncate to the end of its own
  largest earlier epoch and fetch again, which lets the leader answer for that one.
- FENCED_LEADER_EPOCH / NOT_LEADER_OR_FOLLOWER: this follower's idea of the leader is
  outdated; stop fetching until the controller's next record (`become_follower`).
- UNKNOWN_LEADER_EPOCH: the leader has not yet seen the epoch the controller published;
  retry the same fetch after a backoff (Kafka does the same: no new metadata is coming).
- OFFSET_OUT_OF_RANGE: ask the leader for its log start and end (ListOffsets) and call
  `on_leader_offsets`: behind the leader's log start, restart empty there; ahead of the
  leader's end (only after an unclean election), truncate to it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum
from typing import Protocol, Sequence

from kio.schema.errors import ErrorCode

from cluster.wire import record_batch as rb

from .state import PartitionAssignment

logger = logging.getLogger("cluster.replication")

UNDEFINED = -1


class ReplicaLog(Protocol):
    """What the follower needs of a partition log (PartitionLog has it all)."""

    @property
    def log_end_offset(self) -> int: ...
    @property
    def log_start_offset(self) -> int: ...
    @property
    def latest_epoch(self) -> int: ...
    def append_preserving(self, batches: Sequence[bytes | memoryview], *, now_ms: int) -> object: ...
    def truncate_to(self, offset: int) -> None: ...
    def truncate_fully_and_start_at(self, offset: int) -> None: ...
    def end_offset_for_epoch(self, leader_epoch: int) -> tuple[int, int]: ...
    def delete_records_before(self, offset: int) -> int: ...


class FetchState(Enum):
    FETCHING = "fetching"
    BACKOFF = "backoff"  # retry the same fetch after the fetcher's backoff
    NEEDS_OFFSETS = "needs_offsets"  # ask the leader's log start/end, then on_leader_offsets
    AWAITING_METADATA = "awaiting_metadata"  # no fetch until become_follower
    FAILED = "failed"  # the leader sent what no log can take; an operator must look


@dataclass(frozen=True)
class Applied:
    """What one partition's fetch answer did."""

    state: FetchState
    appended_batches: int = 0
    truncated_to: int | None = None
    high_watermark_moved: bool = False


@dataclass
class FollowerPartition:
    """Follower state of one partition on `broker_id`, fetching from `assignment.leader`."""

    topic: str
    partition: int
    broker_id: int
    broker_epoch: int
    assignment: PartitionAssignment
    log: ReplicaLog
    high_watermark: int = 0
    state: FetchState = FetchState.FETCHING

    def __post_init__(self) -> None:
        self.high_watermark = min(self.high_watermark, self.log.log_end_offset)

    @property
    def leader(self) -> int:
        return self.assignment.leader

    @property
    def leader_epoch(self) -> int:
        return self.assignment.leader_epoch

    def become_follower(self, assignment: PartitionAssignment) -> None:
        """The controller's newer record (new leader or epoch): fetch from it."""
        if assignment.leader_epoch < self.assignment.leader_epoch:
            return  # an older record arriving late
        if assignment.leader == self.broker_id:
            raise ValueError(f"{assignment} makes broker {self.broker_id} the leader: build a LeaderPartition")
        self.assignment = assignment
        self.state = FetchState.FETCHING

    def ready(self) -> bool:
        return self.state in (FetchState.FETCHING, FetchState.BACKOFF)

    def fetch_request_fields(self, partition_max_bytes: int) -> dict:
        """This partition's entry of a Fetch request (v12+ field names)."""
        return {
            "partition": self.partition,
            "current_leader_epoch": self.leader_epoch,
            "fetch_offset": self.log.log_end_offset,
            "last_fetched_epoch": self.log.latest_epoch,
            "log_start_offset": self.log.log_start_offset,
            "partition_max_bytes": partition_max_bytes,
        }

    def replica_state(self) -> dict:
        """The request's ReplicaState (v15+); v4-v14 send `replica_id` alone."""
        return {"replica_id": self.broker_id, "replica_epoch": self.broker_epoch}

    def on_fetch_response(self, *, error_code: int, high_watermark: int, log_start_offset: int,
                          records: bytes | memoryview | None,
                          diverging_epoch: tuple[int, int] | None, now_ms: int) -> Applied:
        """Apply one partition's answer to the fetch built from `fetch_request_fields`.

        `now_ms` is wall-clock time, as for every append to the log (it starts segment.ms);
        a monotonic clock here would roll a segment at the next leader append."""
        if error_code:
            return self._on_error(error_code)
        if diverging_epoch is not None and diverging_epoch[1] >= 0:
            return self._truncate_on_divergence(*diverging_epoch)
        appended = 0
        if records:
            appended = self._append(records, now_ms)
            if appended < 0:
                return Applied(self._set(FetchState.FAILED))
        moved = self._learn_high_watermark(high_watermark)
        if log_start_offset > self.log.log_start_offset:
            self.log.delete_records_before(min(log_start_offset, self.log.log_end_offset))
        return Applied(self._set(FetchState.FETCHING), appended, high_watermark_moved=moved)

    def on_leader_offsets(self, leader_log_start: int, leader_log_end: int) -> Applied:
        """After OFFSET_OUT_OF_RANGE: the leader's log start and end (ListOffsets)."""
        leo = self.log.log_end_offset
        if leo > leader_log_end:
            logger.warning("%s-%d: log end %d is past the leader's %d; truncating (unclean election?)",
                           self.topic, self.partition, leo, leader_log_end)
            self.log.truncate_to(leader_log_end)
            self.high_watermark = min(self.high_watermark, self.log.log_end_offset)
            return Applied(self._set(FetchState.FETCHING), truncated_to=leader_log_end)
        if leo < leader_log_start:
            logger.info("%s-%d: log end %d is before the leader's log start %d; restarting there",
                        self.topic, self.partition, leo, leader_log_start)
            self.log.truncate_fully_and_start_at(leader_log_start)
            self.high_watermark = leader_log_start
            return Applied(self._set(FetchState.FETCHING), truncated_to=leader_log_start)
        return Applied(self._set(FetchState.FETCHING))

    # -- internals -------------------------------------------------------------------
    def _set(self, state: FetchState) -> FetchState:
        self.state = state
        return state

    def _on_error(self, code: int) -> Applied:
        if code in (ErrorCode.fenced_leader_epoch, ErrorCode.not_leader_or_follower):
            return Applied(self._set(FetchState.AWAITING_METADATA))
        if code == ErrorCode.offset_out_of_range:
            return Applied(self._set(FetchState.NEEDS_OFFSETS))
        logger.debug("%s-%d: fetch error %d, backing off", self.topic, self.partition, code)
        return Applied(self._set(FetchState.BACKOFF))

    def _truncate_on_divergence(self, leader_epoch: int, leader_end: int) -> Applied:
        own_epoch, own_end = self.log.end_offset_for_epoch(leader_epoch)
        leo = self.log.log_end_offset
        if own_epoch == UNDEFINED:
            target = min(leader_end, leo)  # no epoch history: keep what the leader still has
        else:
            target = min(own_end, leo) if own_epoch != leader_epoch else min(own_end, leader_end, leo)
        if target < self.high_watermark:
            logger.warning("%s-%d: truncating to %d, below the high watermark %d",
                           self.topic, self.partition, target, self.high_watermark)
            self.high_watermark = target
        self.log.truncate_to(target)
        logger.info("%s-%d: diverged from leader %d at epoch %d (end %d); truncated to %d",
                    self.topic, self.partition, self.leader, leader_epoch, leader_end,
                    self.log.log_end_offset)
        return Applied(self._set(FetchState.FETCHING), truncated_to=self.log.log_end_offset)

    def _append(self, records: bytes | memoryview, now_ms: int) -> int:
        """Append the whole batches at or after the log end; -1 if the leader sent bad data."""
        mv = memoryview(records)
        leo = self.log.log_end_offset
        batches = []
        try:
            for pos, h in rb.iter_batches(mv, allow_partial_tail=True):
                view = mv[pos: pos + h.size]
                if rb.compute_crc(view) != h.crc:
                    raise rb.InvalidBatch(f"CRC32C mismatch in the batch at offset {h.base_offset}")
                if h.next_offset <= leo:
                    continue  # already held (the fetch began inside a compacted gap)
                if h.base_offset < leo:
                    raise rb.InvalidBatch(f"batch [{h.base_offset}, {h.next_offset}) straddles the log end {leo}")
                batches.append(view)
        except rb.InvalidBatch as exc:
            logger.error("%s-%d: leader %d sent an unusable batch: %s", self.topic, self.partition,
                         self.leader, exc)
            return -1
        if batches:
            self.log.append_preserving(batches, now_ms=now_ms)
        return len(batches)

    def _learn_high_watermark(self, leader_hw: int) -> bool:
        new = min(leader_hw, self.log.log_end_offset)
        if new > self.high_watermark:
            self.high_watermark = new
            return True
        return False
