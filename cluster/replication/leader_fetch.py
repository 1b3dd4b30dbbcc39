"""The leader's checks on a follower's Fetch, before and after it reads (pure).

Kafka's Partition.fetchRecords for a fetch from a follower: the replica must be one of the
partition's, its CurrentLeaderEpoch must be the leader's (older: FENCED_LEADER_EPOCH, it
has to learn the new leader; newer: UNKNOWN_LEADER_EPOCH, this broker has not caught up
with the controller yet), and its LastFetchedEpoch must agree with this log's leader-epoch
history (KIP-320): if the epoch it last fetched ended here before its fetch offset, or is
unknown here (the largest epoch at or below it is older), its tail diverged and it gets
DivergingEpoch {that epoch, where it ended here} instead of records. Only a fetch that
passed all of that moves the follower's state in `LeaderPartition` (`record_replica_fetch`),
with the leader's log end as it was before the read, so an append racing with the fetch
cannot keep a follower from counting as caught up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from kio.schema.errors import ErrorCode

from .leader import LeaderPartition
from .state import IsrProposal

UNDEFINED = -1


class EpochHistory(Protocol):
    @property
    def log_end_offset(self) -> int: ...
    @property
    def log_start_offset(self) -> int: ...
    def end_offset_for_epoch(self, leader_epoch: int) -> tuple[int, int]: ...


@dataclass(frozen=True)
class ReplicaFetchCheck:
    """error_code 0 and no diverging epoch: read from fetch_offset up to the log end."""

    error_code: int = 0
    diverging_epoch: tuple[int, int] | None = None  # (epoch, end offset)
    leader_log_end: int = UNDEFINED  # the log end before the read, for record_replica_fetch

    @property
    def read(self) -> bool:
        return self.error_code == 0 and self.diverging_epoch is None


def leader_epoch_error(leader_epoch: int, current_leader_epoch: int) -> int:
    """FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH / 0 for a request's CurrentLeaderEpoch."""
    if current_leader_epoch < 0 or current_leader_epoch == leader_epoch:
        return 0
    if current_leader_epoch > leader_epoch:
        return ErrorCode.unknown_leader_epoch
    return ErrorCode.fenced_leader_epoch


def check_replica_fetch(leader: LeaderPartition | None, log: EpochHistory, *, replica_id: int,
                        current_leader_epoch: int, fetch_offset: int,
                        last_fetched_epoch: int) -> ReplicaFetchCheck:
    """Decide how to answer one partition of a follower's fetch."""
    if leader is None or replica_id not in leader.followers:
        return ReplicaFetchCheck(ErrorCode.not_leader_or_follower)
    code = leader_epoch_error(leader.leader_epoch, current_leader_epoch)
    if code:
        return ReplicaFetchCheck(code)
    leo = log.log_end_offset
    if last_fetched_epoch >= 0:
        epoch, end = log.end_offset_for_epoch(last_fetched_epoch)
        if epoch == UNDEFINED or end == UNDEFINED:
            return ReplicaFetchCheck(ErrorCode.offset_out_of_range)
        if end < fetch_offset or epoch < last_fetched_epoch:
            return ReplicaFetchCheck(diverging_epoch=(epoch, end), leader_log_end=leo)
    if fetch_offset < log.log_start_offset or fetch_offset > leo:
        return ReplicaFetchCheck(ErrorCode.offset_out_of_range)
    return ReplicaFetchCheck(leader_log_end=leo)


def record_replica_fetch(leader: LeaderPartition, check: ReplicaFetchCheck, *, replica_id: int,
                         fetch_offset: int, now_ms: int,
                         broker_epoch: int = -1) -> tuple[bool, IsrProposal | None]:
    """After a read `check` allowed: advance the follower's state (HW moved?, ISR proposal)."""
    if not check.read:
        raise ValueError("only a fetch that read records moves the follower's state")
    return leader.on_follower_fetch(replica_id, fetch_offset, now_ms,
                                    leader_leo=check.leader_log_end, broker_epoch=broker_epoch)
