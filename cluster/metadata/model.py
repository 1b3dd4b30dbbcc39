"""The cluster metadata model: brokers, topics, partitions and their epochs, as plain values.

These are what the controller decides and what brokers (and the replication core in
cluster/replication/) read: leader id, leader epoch, ISR, partition epoch, replicas. Each
is stored as one JSON value under one key (`keys` below), so a compare-and-set on that key
is a compare-and-set on that partition's (or broker's) epochs.

Epochs, as Kafka's KRaft mode uses them:
- broker_epoch: a new one at every registration of a broker process (restart); heartbeats
  and ISR change requests carrying an older one are refused (STALE_BROKER_EPOCH).
- leader_epoch: +1 at every leader change; replicas and clients fence on it.
- partition_epoch: +1 at every change of the partition's state (leader or ISR); an ISR
  change request names the partition epoch it was based on and is refused when stale.
- controller_epoch: +1 at every controller takeover; a write made by an older controller
  is refused by the store (its compare on the controller key fails).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

NO_LEADER = -1


@dataclass(frozen=True)
class BrokerInfo:
    """One registered broker: where clients reach it, its rack, epoch and whether fenced."""

    node_id: int
    broker_epoch: int
    host: str
    port: int
    rack: str | None = None
    fenced: bool = False
    incarnation: str = ""  # the process's own id, to tell a restart from a repeat


@dataclass(frozen=True)
class PartitionState:
    """One partition's replicas, leader and ISR, with the epochs that fence them."""

    topic: str
    partition: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    leader: int
    leader_epoch: int = 0
    partition_epoch: int = 0

    def with_leader(self, leader: int, isr: tuple[int, ...]) -> "PartitionState":
        """A new leader (and ISR): both epochs move on."""
        return replace(self, leader=leader, isr=isr, leader_epoch=self.leader_epoch + 1,
                       partition_epoch=self.partition_epoch + 1)

    def with_isr(self, isr: tuple[int, ...]) -> "PartitionState":
        """A new ISR under the same leader: only the partition epoch moves on."""
        return replace(self, isr=isr, partition_epoch=self.partition_epoch + 1)


@dataclass(frozen=True)
class TopicInfo:
    """A topic: its id, partition count, replication factor and configs."""

    name: str
    topic_id: str
    partitions: int
    replication_factor: int
    configs: dict[str, str] = field(default_factory=dict)


def encode(value: BrokerInfo | PartitionState | TopicInfo) -> bytes:
    """The JSON stored for one metadata value."""
    return json.dumps(asdict(value), sort_keys=True).encode()


def decode_broker(raw: bytes) -> BrokerInfo:
    return BrokerInfo(**json.loads(raw))


def decode_partition(raw: bytes) -> PartitionState:
    data: dict[str, Any] = json.loads(raw)
    data["replicas"], data["isr"] = tuple(data["replicas"]), tuple(data["isr"])
    return PartitionState(**data)


def decode_topic(raw: bytes) -> TopicInfo:
    return TopicInfo(**json.loads(raw))


class keys:
    """Where each value lives in the store (under the cluster's own prefix)."""

    CONTROLLER = "controller"            # the controller lease's key: {"node_id", "epoch"}
    CONTROLLER_EPOCH = "controller_epoch"
    BROKER_EPOCH = "broker_epoch"        # the last broker epoch handed out
    BROKERS = "brokers/"
    HEARTBEATS = "heartbeats/"           # written by each broker: {"incarnation", "seq", ...}
    TOPICS = "topics/"
    PARTITIONS = "partitions/"

    @staticmethod
    def broker(node_id: int) -> str:
        return f"brokers/{node_id}"

    @staticmethod
    def heartbeat(node_id: int) -> str:
        return f"heartbeats/{node_id}"

    @staticmethod
    def topic(name: str) -> str:
        return f"topics/{name}"

    @staticmethod
    def partition(topic: str, partition: int) -> str:
        return f"partitions/{topic}/{partition:06d}"
