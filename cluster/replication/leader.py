"""The leader's side of one replicated partition: follower progress, high watermark, ISR.

A pure state machine, as Kafka's Partition.scala keeps it for a partition this broker
leads. The caller (the broker) tells it what happened — a local append, a follower's
fetch at some offset, the time — and it answers with what follows: whether the high
watermark moved, whether the ISR should change (an `IsrProposal` to send to the
controller), whether an acks=all produce is done. It never reads a clock or a socket:
every time is passed in, so tests replay any interleaving exactly.

Rules (Kafka's, with the KIP numbers where they come from):
- A follower's log end offset is the offset it fetches at. It is caught up at a fetch
  whose offset reached the leader's log end as it was when the fetch arrived; at a fetch
  that reached the leader's log end of the follower's *previous* fetch, it was caught up
  then (ReplicaState.updateFetchStateOrThrow). It is lagging once `replica_lag_time_max_ms`
  passed since it was last caught up (ISR shrink).
- The high watermark is the smallest log end offset over the leader and every replica of
  the *maximal* ISR (the committed ISR plus a replica whose addition is in flight,
  KIP-497/841), and of any caught-up replica about to join it; it never goes backwards
  and it advances only while the committed ISR holds at least the effective
  `min.insync.replicas` (KIP-966). Effective = min(min.insync.replicas, replication
  factor), as Kafka's effectiveMinIsr: a topic whose setting exceeds its replica count
  would otherwise never expose a record.
- A follower joins the ISR when its log end reached both the high watermark and the
  offset where the leader's epoch began (Partition.isFollowerInSync): from then on it
  holds everything the leader ever exposed, and everything of this epoch so far.
- acks=all: refused with NOT_ENOUGH_REPLICAS before the append when the committed ISR is
  below the effective minimum; a produce ending at offset E is done when the high
  watermark reaches E, with NOT_ENOUGH_REPLICAS_AFTER_APPEND if by then the maximal ISR
  is below the minimum (Partition.checkEnoughReplicasReachOffset).
- One ISR change is in flight at a time. While a shrink is in flight the removed replica
  still counts for the high watermark (the controller may still refuse the shrink), so a
  watermark never rests on an ISR nobody has committed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from enum import Enum

from kio.schema.errors import ErrorCode

from .state import BrokerState, IsrProposal, PartitionAssignment

logger = logging.getLogger("cluster.replication")

UNKNOWN_OFFSET = -1


@dataclass(frozen=True)
class ReplicationConfig:
    """The per-topic settings the leader enforces (Kafka's names and defaults)."""

    replica_lag_time_max_ms: int = 30_000
    min_insync_replicas: int = 1

    def __post_init__(self) -> None:
        if self.replica_lag_time_max_ms <= 0:
            raise ValueError(f"replica.lag.time.max.ms must be > 0, got {self.replica_lag_time_max_ms}")
        if self.min_insync_replicas < 1:
            raise ValueError(f"min.insync.replicas must be >= 1, got {self.min_insync_replicas}")


@dataclass
class FollowerProgress:
    """What the leader knows of one follower, from its fetches only."""

    log_end_offset: int = UNKNOWN_OFFSET
    last_fetch_leader_leo: int = UNKNOWN_OFFSET
    last_fetch_ms: int = 0
    last_caught_up_ms: int = 0
    broker_epoch: int = -1

    def record_fetch(self, fetch_offset: int, leader_leo: int, now_ms: int, broker_epoch: int) -> None:
        if fetch_offset >= leader_leo:
            self.last_caught_up_ms = max(self.last_caught_up_ms, now_ms)
        elif self.last_fetch_leader_leo >= 0 and fetch_offset >= self.last_fetch_leader_leo:
            self.last_caught_up_ms = max(self.last_caught_up_ms, self.last_fetch_ms)
        self.log_end_offset = fetch_offset
        self.last_fetch_leader_leo = leader_leo
        self.last_fetch_ms = now_ms
        if broker_epoch >= 0:
            self.broker_epoch = broker_epoch

    def caught_up(self, leader_leo: int, now_ms: int, max_lag_ms: int) -> bool:
        return self.log_end_offset == leader_leo or now_ms - self.last_caught_up_ms <= max_lag_ms


class AcksAll(Enum):
    """Where an acks=all produce stands (see `LeaderPartition.acks_all_status`)."""

    WAITING = "waiting"
    DONE = "done"
    NOT_ENOUGH_REPLICAS_AFTER_APPEND = "not_enough_replicas_after_append"


@dataclass
class _Pending:
    proposal: IsrProposal
    maximal_isr: frozenset[int]


@dataclass
class LeaderPartition:
    """Leader state of one partition led by `broker_id` in `assignment.leader_epoch`.

    Build it with `become_leader`; feed it appends (`on_append`), follower fetches
    (`on_follower_fetch`), clock ticks (`maybe_shrink_isr`) and the controller's answers
    (`on_isr_committed` / `on_isr_rejected`).
    """

    topic: str
    partition: int
    broker_id: int
    assignment: PartitionAssignment
    config: ReplicationConfig
    log_end_offset: int
    high_watermark: int
    epoch_start_offset: int  # the log end when this leader epoch began
    followers: dict[int, FollowerProgress] = field(default_factory=dict)
    pending: _Pending | None = None
    fenced_brokers: frozenset[int] = frozenset()  # not eligible to join the ISR (KIP-841)

    @classmethod
    def become_leader(cls, topic: str, partition: int, broker_id: int,
                      assignment: PartitionAssignment, config: ReplicationConfig, *,
                      log_end_offset: int, high_watermark: int, now_ms: int) -> "LeaderPartition":
        """Start leading: followers' positions are unknown until they fetch; an ISR
        member counts as caught up now (it was, by the controller's record)."""
        if assignment.leader != broker_id:
            raise ValueError(f"broker {broker_id} is not the leader in {assignment}")
        followers = {
            r: FollowerProgress(last_caught_up_ms=now_ms if r in assignment.isr else 0)
            for r in assignment.replicas if r != broker_id
        }
        leader = cls(topic, partition, broker_id, assignment, config, log_end_offset,
                     min(high_watermark, log_end_offset), log_end_offset, followers)
        leader._maybe_advance_hw(now_ms)
        return leader

    # -- views ---------------------------------------------------------------------
    @property
    def leader_epoch(self) -> int:
        return self.assignment.leader_epoch

    @property
    def isr(self) -> tuple[int, ...]:
        return self.assignment.isr

    @property
    def maximal_isr(self) -> frozenset[int]:
        return self.pending.maximal_isr if self.pending else frozenset(self.assignment.isr)

    @property
    def effective_min_isr(self) -> int:
        return min(self.config.min_insync_replicas, len(self.assignment.replicas))

    @property
    def under_min_isr(self) -> bool:
        return len(self.assignment.isr) < self.effective_min_isr

    @property
    def visible_high_watermark(self) -> int | None:
        """The high watermark once it reached this epoch's start, else None: until then a
        new leader's watermark (learned as a follower) may trail what the old leader
        exposed, and ListOffsets answers OFFSET_NOT_AVAILABLE, as Kafka does."""
        return self.high_watermark if self.high_watermark >= self.epoch_start_offset else None

    # -- events ----------------------------------------------------------------------
    def on_append(self, log_end_offset: int, now_ms: int) -> bool:
        """The local log grew to `log_end_offset`; True if the high watermark moved."""
        self.log_end_offset = log_end_offset
        return self._maybe_advance_hw(now_ms)

    def on_truncate(self, log_end_offset: int) -> None:
        """The local log was cut back (only a failed append does this to a leader)."""
        self.log_end_offset = log_end_offset
        self.high_watermark = min(self.high_watermark, log_end_offset)

    def on_follower_fetch(self, replica_id: int, fetch_offset: int, now_ms: int, *,
                          leader_leo: int | None = None,
                          broker_epoch: int = -1) -> tuple[bool, IsrProposal | None]:
        """A follower fetched at `fetch_offset` (its log end). `leader_leo` is the
        leader's log end when the fetch arrived, before any append it raced with (default:
        now). Returns (high watermark moved, ISR expansion to propose or None)."""
        progress = self.followers.get(replica_id)
        if progress is None:
            raise KeyError(f"broker {replica_id} is not a replica of {self.topic}-{self.partition}")
        leo = self.log_end_offset if leader_leo is None else leader_leo
        progress.record_fetch(fetch_offset, leo, now_ms, broker_epoch)
        proposal = self._maybe_expand(replica_id)
        return self._maybe_advance_hw(now_ms), proposal

    def maybe_shrink_isr(self, now_ms: int) -> IsrProposal | None:
        """Call periodically: drop ISR followers lagging past replica.lag.time.max.ms."""
        if self.pending is not None:
            return None
        lagging = [r for r in self.assignment.isr if r != self.broker_id
                   and not self.followers[r].caught_up(self.log_end_offset, now_ms,
                                                       self.config.replica_lag_time_max_ms)]
        if not lagging:
            return None
        new_isr = tuple(r for r in self.assignment.isr if r not in lagging)
        logger.info("%s-%d: shrinking ISR %s -> %s (lagging %s)", self.topic, self.partition,
                    list(self.assignment.isr), list(new_isr), lagging)
        # The maximal ISR keeps the lagging replicas until the controller commits.
        return self._propose(new_isr, frozenset(self.assignment.isr))

    def on_isr_committed(self, assignment: PartitionAssignment, now_ms: int) -> bool:
        """The controller's new record for this partition (same leader epoch): adopt it.
        Returns True if the high watermark moved."""
        if assignment.leader_epoch != self.leader_epoch or assignment.leader != self.broker_id:
            raise ValueError(f"{assignment} is a leader change: build a new state instead")
        if assignment.partition_epoch < self.assignment.partition_epoch:
            return False  # an older record arriving late
        self.assignment = assignment
        self.pending = None
        for r in assignment.replicas:
            if r != self.broker_id:
                self.followers.setdefault(r, FollowerProgress())
        return self._maybe_advance_hw(now_ms)

    def on_isr_rejected(self) -> None:
        """The controller refused the proposal (stale partition epoch, fenced broker):
        forget it; new metadata or the next fetch/tick decides again."""
        self.pending = None

    # -- acks=all -------------------------------------------------------------------
    def acks_all_precheck(self) -> int:
        """Error code to refuse an acks=all produce with before appending, or 0."""
        return ErrorCode.not_enough_replicas if self.under_min_isr else 0

    def acks_all_status(self, end_offset: int) -> AcksAll:
        """A produce whose last record is at end_offset - 1: done, failed, or waiting."""
        if self.high_watermark < end_offset:
            return AcksAll.WAITING
        if len(self.maximal_isr) < self.effective_min_isr:
            return AcksAll.NOT_ENOUGH_REPLICAS_AFTER_APPEND
        return AcksAll.DONE

    # -- internals ------------------------------------------------------------------
    def _maybe_expand(self, replica_id: int) -> IsrProposal | None:
        if self.pending is not None or replica_id in self.assignment.isr:
            return None
        if replica_id in self.fenced_brokers:
            return None
        progress = self.followers[replica_id]
        if progress.log_end_offset < max(self.high_watermark, self.epoch_start_offset):
            return None
        new_isr = self.assignment.isr + (replica_id,)
        logger.info("%s-%d: expanding ISR %s -> %s", self.topic, self.partition,
                    list(self.assignment.isr), list(new_isr))
        return self._propose(new_isr, frozenset(new_isr))

    def _propose(self, new_isr: tuple[int, ...], maximal: frozenset[int]) -> IsrProposal:
        states = tuple(BrokerState(r, self.followers[r].broker_epoch if r in self.followers else -1)
                       for r in new_isr)
        proposal = IsrProposal(self.topic, self.partition, self.broker_id, self.leader_epoch,
                               self.assignment.partition_epoch, states)
        self.pending = _Pending(proposal, maximal)
        return proposal

    def _maybe_advance_hw(self, now_ms: int) -> bool:
        if self.under_min_isr:
            return False
        new_hw = self.log_end_offset
        maximal = self.maximal_isr
        lag_ms = self.config.replica_lag_time_max_ms
        for r, progress in self.followers.items():
            joining = (r not in self.fenced_brokers and progress.log_end_offset >= 0
                       and progress.caught_up(self.log_end_offset, now_ms, lag_ms))
            if progress.log_end_offset < new_hw and (r in maximal or joining):
                new_hw = progress.log_end_offset
        if new_hw > self.high_watermark:
            self.high_watermark = new_hw
            return True
        return False
