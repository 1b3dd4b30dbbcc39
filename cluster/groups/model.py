"""Plain data shared by the group state machine, the offset rules, the store and the driver.

Kept apart from the machine itself so the driver and the persistence codec can name these
types without importing the transition logic, and so each file stays small. Nothing here
does I/O or knows about asyncio: requests come in as dataclasses, answers leave as
`Effect`s that the driver carries out (h11-style).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Union

from kio.schema.errors import ErrorCode

Token = int
"""Opaque handle of one in-flight JoinGroup/SyncGroup request, chosen by the driver."""


class GroupState(enum.Enum):
    """Kafka's classic group states; `.value` is the name Kafka shows in Describe/ListGroups."""

    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"


@dataclass(frozen=True)
class GroupConfig:
    """Broker-side limits, with Kafka's defaults (group.min/max.session.timeout.ms)."""

    min_session_timeout_ms: int = 6_000
    max_session_timeout_ms: int = 1_800_000
    max_metadata_size: int = 4096
    new_member_join_timeout_ms: int = 300_000
    # group.initial.rebalance.delay.ms: the first rebalance of an empty group waits this
    # long (and again per member joining meanwhile, within the rebalance timeout).
    initial_rebalance_delay_ms: int = 3_000
    # offsets.retention.minutes (7 days): see cluster/groups/offsets.py `expire`.
    offsets_retention_ms: int = 7 * 24 * 3600 * 1000


@dataclass
class Member:
    """One member of a classic group, as the coordinator knows it."""

    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocol_type: str
    protocols: tuple[tuple[str, bytes], ...]
    assignment: bytes = b""
    last_heartbeat_ms: int = 0
    join_token: Token | None = None
    sync_token: Token | None = None
    is_new: bool = False

    def metadata(self, protocol: str | None) -> bytes:
        for name, meta in self.protocols:
            if name == protocol:
                return meta
        return b""

    def protocol_names(self) -> list[str]:
        return [name for name, _ in self.protocols]


@dataclass(frozen=True)
class CommittedOffset:
    offset: int
    leader_epoch: int
    metadata: str
    commit_timestamp_ms: int


@dataclass(frozen=True)
class JoinRequest:
    """The version-independent content of a JoinGroup request."""

    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocol_type: str
    protocols: tuple[tuple[str, bytes], ...]
    require_known_member_id: bool = True


@dataclass(frozen=True)
class JoinMember:
    member_id: str
    group_instance_id: str | None
    metadata: bytes


@dataclass(frozen=True)
class JoinResult:
    error: ErrorCode
    member_id: str = ""
    generation_id: int = -1
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader: str = ""
    skip_assignment: bool = False
    members: tuple[JoinMember, ...] = ()


@dataclass(frozen=True)
class SyncResult:
    error: ErrorCode
    protocol_type: str | None = None
    protocol_name: str | None = None
    assignment: bytes = b""


@dataclass(frozen=True)
class Reply:
    """Answer the deferred request `token` with `result`."""

    token: Token
    result: JoinResult | SyncResult


@dataclass(frozen=True)
class PersistGroup:
    """Write the group's current metadata durably before any later effect is carried out."""

    group_id: str


@dataclass(frozen=True)
class PersistOffsets:
    """Write these offsets durably (None = tombstone) before answering the commit."""

    group_id: str
    offsets: tuple[tuple[str, int, CommittedOffset | None], ...]


@dataclass(frozen=True)
class DeleteGroup:
    """Tombstone the group's metadata (its offsets come as PersistOffsets)."""

    group_id: str


Effect = Union[Reply, PersistGroup, PersistOffsets, DeleteGroup]


@dataclass
class LeaveOutcome:
    errors: list[tuple[str, str | None, ErrorCode]] = field(default_factory=list)
    effects: list[Effect] = field(default_factory=list)
