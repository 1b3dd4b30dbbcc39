"""Plain data of KIP-848 consumer groups: members, heartbeat requests and answers.

Kept apart from the machine (cluster/groups/consumer.py) like cluster/groups/model.py is
from the classic one, so the driver and the journal codec can name these types without
the transition logic. Assignments are kept by topic name; topic ids appear only at the
edge (requests and answers), translated with the `TopicImage` the driver supplies.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from typing import Mapping, Protocol

from kio.schema.errors import ErrorCode

Assignment = dict[str, frozenset[int]]

LEAVE_EPOCH = -1
"""member_epoch of a member leaving the group."""
STATIC_LEAVE_EPOCH = -2
"""member_epoch of a static member leaving for a while (its assignment is kept)."""


class ConsumerGroupState(enum.Enum):
    """Kafka's ConsumerGroupState names, as ListGroups/ConsumerGroupDescribe show them."""

    EMPTY = "Empty"
    ASSIGNING = "Assigning"
    RECONCILING = "Reconciling"
    STABLE = "Stable"
    DEAD = "Dead"


class MemberState(enum.Enum):
    """Kafka's MemberState: where a member is in reaching its target assignment."""

    STABLE = "stable"
    UNREVOKED_PARTITIONS = "unrevoked_partitions"
    UNRELEASED_PARTITIONS = "unreleased_partitions"


class TopicImage(Protocol):
    """What the machine needs of the cluster's topics (the driver wraps the catalogue)."""

    def partitions(self, name: str) -> int | None: ...

    def topic_id(self, name: str) -> uuid.UUID | None: ...

    def name(self, topic_id: uuid.UUID) -> str | None: ...

    def names(self) -> list[str]: ...

    def visible(self, principal: str, host: str, name: str) -> bool:
        """May `principal` (connecting from `host`) Describe topic `name`? Regex
        subscriptions resolve only to such topics, as Kafka's authorizer filters them."""
        ...


@dataclass
class StaticTopics:
    """A fixed TopicImage (tests, and the driver's snapshot of the catalogue)."""

    topics: Mapping[str, tuple[uuid.UUID, int]]

    def partitions(self, name: str) -> int | None:
        t = self.topics.get(name)
        return None if t is None else t[1]

    def topic_id(self, name: str) -> uuid.UUID | None:
        t = self.topics.get(name)
        return None if t is None else t[0]

    def name(self, topic_id: uuid.UUID) -> str | None:
        for n, (tid, _) in self.topics.items():
            if tid == topic_id:
                return n
        return None

    def names(self) -> list[str]:
        return list(self.topics)

    def visible(self, principal: str, host: str, name: str) -> bool:
        return True


@dataclass(frozen=True)
class ConsumerConfig:
    """Broker-side settings of the consumer protocol, with Kafka's defaults."""

    session_timeout_ms: int = 45_000  # group.consumer.session.timeout.ms
    heartbeat_interval_ms: int = 5_000  # group.consumer.heartbeat.interval.ms
    max_size: int = 2**31 - 1  # group.consumer.max.size


@dataclass
class ConsumerMember:
    member_id: str
    instance_id: str | None = None
    rack_id: str | None = None
    client_id: str = ""
    client_host: str = ""
    principal: str = ""  # who heartbeats (regex subscriptions see only what it may Describe)
    host: str = ""  # its address as ACL host patterns match it
    rebalance_timeout_ms: int = 300_000
    subscribed_topic_names: tuple[str, ...] = ()
    subscribed_topic_regex: str | None = None
    server_assignor: str | None = None
    member_epoch: int = 0
    previous_member_epoch: int = -1
    state: MemberState = MemberState.STABLE
    assigned: Assignment = field(default_factory=dict)
    revoking: Assignment = field(default_factory=dict)
    assigned_at: dict[tuple[str, int], int] = field(default_factory=dict)  # partition -> epoch it came with
    session_deadline_ms: int = 0
    revocation_deadline_ms: int | None = None


@dataclass(frozen=True)
class HeartbeatRequest:
    """The version-independent content of a ConsumerGroupHeartbeat request."""

    member_id: str
    member_epoch: int
    instance_id: str | None = None
    rack_id: str | None = None
    rebalance_timeout_ms: int = -1
    subscribed_topic_names: tuple[str, ...] | None = None
    subscribed_topic_regex: str | None = None
    server_assignor: str | None = None
    owned: tuple[tuple[uuid.UUID, tuple[int, ...]], ...] | None = None
    client_id: str = ""
    client_host: str = ""
    principal: str = ""
    host: str = ""


@dataclass(frozen=True)
class HeartbeatResult:
    error: ErrorCode
    message: str | None = None
    member_id: str | None = None
    member_epoch: int = -1
    heartbeat_interval_ms: int = 0
    assignment: tuple[tuple[uuid.UUID, tuple[int, ...]], ...] | None = None


def copy_assignment(a: Mapping[str, frozenset[int]]) -> Assignment:
    return {t: frozenset(ps) for t, ps in a.items() if ps}


def minus(a: Mapping[str, frozenset[int]], b: Mapping[str, frozenset[int]]) -> Assignment:
    return {t: ps - b.get(t, frozenset()) for t, ps in a.items() if ps - b.get(t, frozenset())}


def intersect(a: Mapping[str, frozenset[int]], b: Mapping[str, frozenset[int]]) -> Assignment:
    return {t: ps & b[t] for t, ps in a.items() if t in b and ps & b[t]}


def union(a: Mapping[str, frozenset[int]], b: Mapping[str, frozenset[int]]) -> Assignment:
    out = dict(a)
    for t, ps in b.items():
        out[t] = out.get(t, frozenset()) | ps
    return {t: ps for t, ps in out.items() if ps}
