"""The plain values the data plane and the controller agree on (no behaviour here).

The controller (cluster/metadata/) publishes, per partition, who leads, in which leader
epoch, which replicas exist and which are in sync, and the partition epoch its record is
at. The data plane only ever reads these values and answers with an `IsrProposal`, which
the controller applies with compare-and-set on the partition epoch (KRaft's
AlterPartition): a proposal based on an older partition epoch is rejected, never merged.
Keeping the exchange to frozen values lets either side be tested without the other.
"""

from __future__ import annotations

from dataclasses import dataclass

NO_LEADER = -1


@dataclass(frozen=True)
class PartitionAssignment:
    """One partition's replication record as the controller published it."""

    leader: int  # broker id, or NO_LEADER while the partition is offline
    leader_epoch: int
    isr: tuple[int, ...]
    replicas: tuple[int, ...]
    partition_epoch: int  # bumped by every change of this record (leader or ISR)

    @classmethod
    def of(cls, state: object) -> "PartitionAssignment":
        """From any record with these five attributes (cluster/metadata's PartitionState):
        the data plane reads the values, never the control plane's types."""
        return cls(leader=state.leader, leader_epoch=state.leader_epoch, isr=tuple(state.isr),
                   replicas=tuple(state.replicas), partition_epoch=state.partition_epoch)

    def __post_init__(self) -> None:
        if self.leader != NO_LEADER and self.leader not in self.isr:
            raise ValueError(f"leader {self.leader} is not in the ISR {list(self.isr)}")
        if not set(self.isr) <= set(self.replicas):
            raise ValueError(f"ISR {list(self.isr)} is not a subset of the replicas {list(self.replicas)}")


@dataclass(frozen=True)
class BrokerState:
    """A replica in an ISR proposal: broker id and the broker epoch it fetched with
    (KIP-903: the controller refuses to add a broker that restarted since)."""

    broker_id: int
    broker_epoch: int = -1


@dataclass(frozen=True)
class IsrProposal:
    """AlterPartition from the leader: "based on partition epoch E, the ISR should be ...".

    `new_isr` always contains the leader. The controller answers with the new
    PartitionAssignment (partition epoch bumped) or rejects a stale one.
    """

    topic: str
    partition: int
    leader: int
    leader_epoch: int
    partition_epoch: int
    new_isr: tuple[BrokerState, ...]

    @property
    def isr_ids(self) -> tuple[int, ...]:
        return tuple(b.broker_id for b in self.new_isr)
