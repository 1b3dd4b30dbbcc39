"""Scale-out: mirror processes of one link share its partitions through a Kafka group.

Several `dcmirror mirror` processes may run the same config. Each link's processes join
the consumer group ``dcmirror.<link>`` on the link's **target** cluster with the classic
group protocol, as Kafka Connect workers do: FindCoordinator, JoinGroup (protocol type
``dcmirror``, one protocol ``dcmirror-sticky-v1``), SyncGroup (the elected leader computes
everyone's share with `mirror.daemon.assignment`), Heartbeat, and LeaveGroup on a clean stop so the
others take over at once. A process killed with -9 is dropped by the coordinator after the
session timeout and its share moves to the survivors. Any Kafka-protocol cluster with a
group coordinator works as the meeting point: ours, Apache Kafka, others. The group name
starts with ``dcmirror.``, which `mirror.config.policy.is_internal_group` excludes from
checkpointing.

Safety: a partition is never handed to a member while another member still copies it.
The assignor withholds a moving partition for one generation; its owner stops copying it
(waiting for an in-flight write to land), then rejoins, and the next generation hands it
over (KIP-429's cooperative protocol). A member that loses its membership (unknown member,
illegal generation, or no heartbeat answered for a whole session timeout) stops copying
everything before it joins again, because the coordinator may have given its partitions
away. When the link's partitions change (topic sync found a new topic or partitions), the
leader rejoins so the new ones are dealt.

The group protocol itself (JoinGroup, SyncGroup, Heartbeat, LeaveGroup, losing and
regaining membership) is `cluster.client.group_member.GroupMembership`; this module is
the mirror's side of it (as Connect's WorkerCoordinator is of AbstractCoordinator): what a
member says when it joins, the assignor, and starting and stopping partitions.

The member talks to the coordinator on a client of its own: JoinGroup may legitimately
block for the rebalance timeout, and brokers answer one connection's requests in order,
so sharing the copier's connection would stall its writes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Iterable

from cluster.client.client import KafkaClient
from cluster.client.group_member import GroupMembership, GroupTimeouts
from cluster.client.waits import until
from mirror.daemon.assignment import (
    PROTOCOL_NAME,
    PROTOCOL_TYPE,
    Assignment,
    AssignmentDecodeError,
    MemberMetadata,
    assign,
    partitions_digest,
)

log = logging.getLogger(__name__)

TP = tuple[str, int]

OnAssignment = Callable[[frozenset[TP]], Awaitable[None]]


def group_id_for(link_name: str) -> str:
    """The group a link's mirror processes meet in (excluded from checkpointing by policy)."""
    return f"dcmirror.{link_name}"


@dataclass(frozen=True)
class MembershipConfig(GroupTimeouts):
    """The mirror's group timeouts: a dead process's share moves within ~8 s."""

    session_timeout_ms: int = 8_000
    rebalance_timeout_ms: int = 20_000
    heartbeat_interval_s: float = 1.0
    retry_backoff_s: float = 0.5


@dataclass
class GroupMember:
    """One process's membership in a link's group; `filter` is LinkRunner's assignor hook.

    `run(stop, on_assignment)` keeps the membership alive; `on_assignment(partitions)` is
    awaited whenever this member's share changes and must return only once partitions no
    longer in the share are not being copied any more."""

    client: KafkaClient
    group_id: str
    config: MembershipConfig = field(default_factory=MembershipConfig)
    client_host: str = field(default_factory=socket.gethostname)

    #: the partitions this member may copy now (the last SyncGroup answer)
    assigned: frozenset[TP] = frozenset()

    protocol_type = PROTOCOL_TYPE
    protocol_name = PROTOCOL_NAME

    def __post_init__(self) -> None:
        self._view: frozenset[TP] | None = None
        self._view_ready = asyncio.Event()
        self._assigned_view: frozenset[TP] | None = None  # the leader's view at its last assignment
        self._on_assignment: OnAssignment | None = None
        self.group = GroupMembership(self.client, self.group_id, self, self.config,
                                     join_reason="dcmirror mirror (re)joining",
                                     leave_reason="dcmirror mirror stopping")

    # ---- what the group knows of us ----------------------------------------------------------
    @property
    def is_leader(self) -> bool:
        return self.group.is_leader

    @property
    def standalone(self) -> bool:
        """Without a group coordinator on the target, this process owns every partition."""
        return self.group.standalone

    def describe(self) -> dict:
        """For /status: who we are in the group and what we copy."""
        return {"group": self.group_id, "member_id": self.group.member_id, "generation": self.group.generation,
                "leader": self.is_leader, "standalone": self.standalone,
                "assigned": len(self.assigned), "rebalances": self.group.rebalances}

    # ---- LinkRunner's assignor hook --------------------------------------------------------
    def filter(self, partitions: Iterable[TP]) -> list[TP]:
        """This member's share of `partitions` (the link's partitions after a topic sync).
        Also records the member's view; a leader seeing new partitions asks for a rebalance."""
        parts = list(partitions)
        view = frozenset(parts)
        self._view = view
        self._view_ready.set()
        if self.standalone:
            return parts
        if self.is_leader and self._assigned_view is not None and view != self._assigned_view:
            if not self.group.rejoin_requested:
                log.info("group %s: the link's partitions changed (%d -> %d); rebalancing",
                         self.group_id, len(self._assigned_view), len(view))
            self.group.request_rejoin()
        return [tp for tp in parts if tp in self.assigned]

    # ---- lifecycle -----------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event, on_assignment: OnAssignment) -> None:
        """Once the link's first topic sync gave a view: be a member until ``stop``."""
        self._on_assignment = on_assignment
        if not await until(stop, self._view_ready):
            return
        try:
            await self.group.run(stop)
        finally:
            await self.client.close()

    async def _set_assigned(self, partitions: frozenset[TP]) -> None:
        if partitions == self.assigned:
            return
        lost, gained = self.assigned - partitions, partitions - self.assigned
        self.assigned = partitions
        if lost or gained:
            log.info("group %s: generation %d: copying %d partition(s) (+%d, -%d)",
                     self.group_id, self.group.generation, len(partitions), len(gained), len(lost))
        if self._on_assignment is not None:
            await self._on_assignment(partitions)

    # ---- the group protocol's hooks (cluster.client.group_member.GroupProtocol) -----------------
    async def without_coordinator(self, stop: asyncio.Event) -> None:
        log.warning("group %s: the target has no group coordinator; this process copies every "
                    "partition (do not run a second one)", self.group_id)
        while not stop.is_set():
            if self._view is not None and self._view != self.assigned:
                await self._set_assigned(self._view)
            await until(stop, None, 1.0)

    async def on_leave(self) -> None:
        await self._set_assigned(frozenset())

    async def on_lost(self, why: str) -> None:
        if self.assigned:
            log.warning("group %s: %s; stopping every partition before rejoining", self.group_id, why)
        await self._set_assigned(frozenset())

    async def join_metadata(self) -> bytes:
        """What we own and have seen; a member whose owned set does not fit the metadata
        cap says ``owned: null`` and stops copying first (the eager fallback)."""
        view = self._view or frozenset()
        meta = MemberMetadata(self.client_host, os.getpid(), self.assigned, self.group.generation,
                              partitions_digest(view))
        if not meta.fits():
            meta = MemberMetadata(self.client_host, os.getpid(), None, self.group.generation, meta.seen)
            await self._set_assigned(frozenset())
        return meta.encode()

    async def on_assignment(self, generation: int, assignment: bytes) -> None:
        share = Assignment.decode(assignment)
        revoked = bool(self.assigned - share.partitions)
        await self._set_assigned(share.partitions)
        if revoked:
            # What we let go of was withheld from its new owner: rejoin so it is handed over.
            self.group.request_rejoin()

    def assign(self, generation: int, leader_id: str, members: list[tuple[str, bytes]]) -> dict[str, bytes]:
        metas: dict[str, MemberMetadata] = {}
        foreign: list[str] = []
        for member_id, metadata in members:
            try:
                metas[member_id] = MemberMetadata.decode(metadata)
            except AssignmentDecodeError:
                foreign.append(member_id)
        view = self._view or frozenset()
        self._assigned_view = view
        plan = assign(metas, view)
        log.info("group %s: generation %d: leading %d member(s) over %d partition(s)%s",
                 self.group_id, generation, len(metas), len(view),
                 f", {len(plan.withheld)} withheld until revoked" if plan.withheld else "")
        if foreign:
            log.warning("group %s: members %s are not dcmirror mirrors; they get nothing",
                        self.group_id, foreign)
        out = {mid: Assignment(tps, generation, leader_id, len(plan.withheld)).encode()
               for mid, tps in sorted(plan.now.items())}
        out.update({mid: Assignment(frozenset(), generation).encode() for mid in foreign})
        return out


def member_for_link(cfg, link, *, dial, config: MembershipConfig | None = None) -> GroupMember:
    """A GroupMember for `link`, with its own client to the link's target cluster."""
    from mirror.config.clients import client_for_cluster

    client = client_for_cluster(cfg.clusters[link.target], f"{link.name}-member", dial=dial)
    return GroupMember(client, group_id_for(link.name), config or MembershipConfig())
