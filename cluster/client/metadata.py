"""The client's view of a cluster (brokers, controller, topics, leaders) as plain data.

Parsing a Metadata response is pure so it can be tested without a broker; the client keeps
one `ClusterMetadata` and merges partial refreshes into it (a refresh of one topic must not
forget the others).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from typing import Any

_ZERO_UUID = uuid.UUID(int=0)


@dataclass(frozen=True)
class BrokerInfo:
    node_id: int
    host: str
    port: int
    rack: str | None = None


@dataclass(frozen=True)
class PartitionMetadata:
    partition: int
    leader_id: int
    leader_epoch: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    offline_replicas: tuple[int, ...] = ()
    error_code: int = 0


@dataclass(frozen=True)
class TopicMetadata:
    name: str
    topic_id: uuid.UUID | None
    partitions: dict[int, PartitionMetadata]
    is_internal: bool = False
    error_code: int = 0

    @property
    def num_partitions(self) -> int:
        return len(self.partitions)


@dataclass
class ClusterMetadata:
    brokers: dict[int, BrokerInfo] = field(default_factory=dict)
    controller_id: int = -1
    cluster_id: str | None = None
    topics: dict[str, TopicMetadata] = field(default_factory=dict)
    #: topics the last refresh asked about that came back with an error and no partitions
    topic_errors: dict[str, int] = field(default_factory=dict)

    def leader(self, topic: str, partition: int) -> int | None:
        """The leader's node id, or None when unknown or leaderless (-1)."""
        t = self.topics.get(topic)
        p = t.partitions.get(partition) if t else None
        if p is None or p.leader_id < 0:
            return None
        return p.leader_id

    def topic_id(self, topic: str) -> uuid.UUID | None:
        t = self.topics.get(topic)
        return t.topic_id if t else None

    def topic_name(self, topic_id: uuid.UUID) -> str | None:
        for t in self.topics.values():
            if t.topic_id == topic_id:
                return t.name
        return None

    def merged(self, newer: "ClusterMetadata", requested: list[str] | None) -> "ClusterMetadata":
        """Fold a refresh into this view: everything when `requested` is None (a full
        refresh), else only the requested topics (removing those now erroring)."""
        if requested is None:
            return newer
        topics = dict(self.topics)
        errors = dict(self.topic_errors)
        for name in requested:
            topics.pop(name, None)
            errors.pop(name, None)
        topics.update(newer.topics)
        errors.update(newer.topic_errors)
        return replace(newer, topics=topics, topic_errors=errors)


def _uuid_or_none(value: Any) -> uuid.UUID | None:
    if value is None or value == _ZERO_UUID:
        return None
    return value


def parse_metadata(response: Any) -> ClusterMetadata:
    """ClusterMetadata from a kio MetadataResponse of any version."""
    brokers = {
        int(b.node_id): BrokerInfo(int(b.node_id), b.host, int(b.port), getattr(b, "rack", None))
        for b in response.brokers
    }
    topics: dict[str, TopicMetadata] = {}
    errors: dict[str, int] = {}
    for t in response.topics:
        if t.name is None:
            continue
        parts = {
            int(p.partition_index): PartitionMetadata(
                partition=int(p.partition_index),
                leader_id=int(p.leader_id),
                leader_epoch=int(getattr(p, "leader_epoch", -1)),
                replicas=tuple(int(r) for r in p.replica_nodes),
                isr=tuple(int(r) for r in p.isr_nodes),
                offline_replicas=tuple(int(r) for r in getattr(p, "offline_replicas", ())),
                error_code=int(p.error_code),
            )
            for p in t.partitions
        }
        code = int(t.error_code)
        if code != 0:
            errors[t.name] = code
        if code == 0 or parts:
            topics[t.name] = TopicMetadata(
                name=t.name,
                topic_id=_uuid_or_none(getattr(t, "topic_id", None)),
                partitions=parts,
                is_internal=bool(getattr(t, "is_internal", False)),
                error_code=code,
            )
    return ClusterMetadata(
        brokers=brokers,
        controller_id=int(getattr(response, "controller_id", -1)),
        cluster_id=getattr(response, "cluster_id", None),
        topics=topics,
        topic_errors=errors,
    )
