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

The member talks to the coordinator on a client of its own: JoinGroup may legitimately
block for the rebalance timeout, and brokers answer one connection's requests in order,
so sharing the copier's connection would stall its writes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Iterable

from kio.schema.errors import ErrorCode

from cluster.client.client import KafkaClient
from cluster.client.connection import BrokerConnection
from cluster.client.errors import KafkaError, check
from cluster.client.metadata import BrokerInfo
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
JOIN_GROUP, HEARTBEAT, LEAVE_GROUP, SYNC_GROUP = 11, 12, 13, 14

_COORDINATOR_CODES = frozenset(int(c) for c in (
    ErrorCode.not_coordinator, ErrorCode.coordinator_not_available,
    ErrorCode.coordinator_load_in_progress))
#: The coordinator no longer knows us in this generation: our partitions may be elsewhere.
_FENCED_CODES = frozenset(int(c) for c in (
    ErrorCode.unknown_member_id, ErrorCode.illegal_generation, ErrorCode.fenced_instance_id))

OnAssignment = Callable[[frozenset[TP]], Awaitable[None]]


def group_id_for(link_name: str) -> str:
    """The group a link's mirror processes meet in (excluded from checkpointing by policy)."""
    return f"dcmirror.{link_name}"


@dataclass(frozen=True)
class MembershipConfig:
    session_timeout_ms: int = 8_000
    rebalance_timeout_ms: int = 20_000
    heartbeat_interval_s: float = 1.0
    retry_backoff_s: float = 0.5


class _Rejoin(Exception):
    """Leave the heartbeat loop and join again (keeping owned partitions)."""


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

    member_id: str = ""
    generation: int = -1
    leader_id: str = ""
    #: the partitions this member may copy now (the last SyncGroup answer)
    assigned: frozenset[TP] = frozenset()
    #: without a group coordinator on the target, this process owns every partition
    standalone: bool = False
    rebalances: int = 0

    def __post_init__(self) -> None:
        self._view: frozenset[TP] | None = None
        self._view_ready = asyncio.Event()
        self._rejoin = asyncio.Event()
        self._assigned_view: frozenset[TP] | None = None  # the leader's view at its last assignment
        self._coordinator: BrokerInfo | None = None
        self._last_ok = time.monotonic()
        self._on_assignment: OnAssignment | None = None
        self._joined = False

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
            if not self._rejoin.is_set():
                log.info("group %s: the link's partitions changed (%d -> %d); rebalancing",
                         self.group_id, len(self._assigned_view), len(view))
            self._rejoin.set()
        return [tp for tp in parts if tp in self.assigned]

    @property
    def is_leader(self) -> bool:
        return self._joined and bool(self.member_id) and self.member_id == self.leader_id

    def describe(self) -> dict:
        """For /status: who we are in the group and what we copy."""
        return {"group": self.group_id, "member_id": self.member_id, "generation": self.generation,
                "leader": self.is_leader, "standalone": self.standalone,
                "assigned": len(self.assigned), "rebalances": self.rebalances}

    # ---- lifecycle -----------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event, on_assignment: OnAssignment) -> None:
        self._on_assignment = on_assignment
        if not await _until(stop, self._view_ready):
            return
        failing = ""
        try:
            while not stop.is_set():
                try:
                    if self.standalone or not await self._group_capable():
                        await self._run_standalone(stop)
                        return
                    if not self._joined or self._rejoin.is_set():
                        await self._join_and_sync(stop)
                    if self._joined:
                        await self._heartbeat_until_rejoin(stop)
                    if failing:
                        log.info("group %s: coordinator reachable again", self.group_id)
                        failing = ""
                except _Rejoin:
                    self._rejoin.set()
                    continue
                except asyncio.CancelledError:
                    raise
                except (KafkaError, OSError, asyncio.TimeoutError) as exc:
                    msg = f"{type(exc).__name__}: {exc}"
                    if msg != failing:
                        log.warning("group %s: %s; retrying", self.group_id, msg)
                        failing = msg
                    self._coordinator = None
                    await self._check_session_expiry()
                    await _until(stop, None, self.config.retry_backoff_s)
        finally:
            await self._leave()
            await self.client.close()

    async def _group_capable(self) -> bool:
        conn = await self.client.any_connection()
        if all(conn.versions.supports(k) for k in (JOIN_GROUP, SYNC_GROUP, HEARTBEAT)):
            return True
        log.warning("group %s: the target has no group coordinator; this process copies every "
                    "partition (do not run a second one)", self.group_id)
        return False

    async def _run_standalone(self, stop: asyncio.Event) -> None:
        self.standalone = True
        while not stop.is_set():
            if self._view is not None and self._view != self.assigned:
                await self._set_assigned(self._view)
            await _until(stop, None, 1.0)

    async def _leave(self) -> None:
        """Stop copying, then leave, so the others take over without waiting for a timeout."""
        if not self._joined:
            return
        self._joined = False
        try:
            await self._set_assigned(frozenset())
            conn = await asyncio.wait_for(self._conn(), 5)
            body = conn.build(LEAVE_GROUP, {
                "group_id": self.group_id, "member_id": self.member_id,
                "members": [{"member_id": self.member_id, "group_instance_id": None,
                             "reason": "dcmirror mirror stopping"}]})
            resp = await conn.send(body, timeout_s=5)
            log.info("group %s: left (%s)", self.group_id, ErrorCode(int(resp.error_code)).name)
        except (KafkaError, OSError, asyncio.TimeoutError) as exc:
            log.info("group %s: could not leave cleanly (%s); the coordinator will time us out",
                     self.group_id, exc)

    # ---- the protocol ---------------------------------------------------------------------------
    async def _conn(self) -> BrokerConnection:
        if self._coordinator is None:
            self._coordinator = await self.client.find_coordinator(self.group_id)
        c = self._coordinator
        return await self.client.connection(c.node_id, (c.host, c.port))

    def _check(self, code: int, what: str) -> None:
        if int(code) in _COORDINATOR_CODES:
            self._coordinator = None
        check(code, context=f"{what} {self.group_id}")

    async def _set_assigned(self, partitions: frozenset[TP]) -> None:
        if partitions == self.assigned:
            return
        lost, gained = self.assigned - partitions, partitions - self.assigned
        self.assigned = partitions
        if lost or gained:
            log.info("group %s: generation %d: copying %d partition(s) (+%d, -%d)",
                     self.group_id, self.generation, len(partitions), len(gained), len(lost))
        if self._on_assignment is not None:
            await self._on_assignment(partitions)

    async def _lose_all(self, why: str) -> None:
        if self.assigned:
            log.warning("group %s: %s; stopping every partition before rejoining", self.group_id, why)
        await self._set_assigned(frozenset())
        self._joined = False

    async def _check_session_expiry(self) -> None:
        """Unanswered for a whole session: the coordinator has dropped us by now."""
        if self._joined and time.monotonic() - self._last_ok > self.config.session_timeout_ms / 1000:
            await self._lose_all("no heartbeat answered within the session timeout")

    def _metadata(self) -> MemberMetadata:
        view = self._view or frozenset()
        meta = MemberMetadata(self.client_host, os.getpid(), self.assigned, self.generation,
                              partitions_digest(view))
        return meta if meta.fits() else MemberMetadata(self.client_host, os.getpid(), None,
                                                       self.generation, meta.seen)

    async def _join_and_sync(self, stop: asyncio.Event) -> None:
        self._rejoin.clear()
        try:
            await self._join_and_sync_once()
        except BaseException:
            self._rejoin.set()  # a half-done rebalance is redone from JoinGroup
            raise

    async def _join_and_sync_once(self) -> None:
        meta = self._metadata()
        if meta.owned is None:
            await self._set_assigned(frozenset())  # eager fallback: metadata cannot say what we own
        conn = await self._conn()
        wait_s = self.config.rebalance_timeout_ms / 1000 + 5
        resp = await self._join(conn, meta, wait_s)
        self.member_id, self.generation, self.leader_id = resp.member_id, int(resp.generation_id), resp.leader
        self._joined = True
        self._last_ok = time.monotonic()
        self.rebalances += 1
        assignments = []
        if self.member_id == self.leader_id and not getattr(resp, "skip_assignment", False):
            assignments = self._lead(resp.members)
        share = await self._sync(conn, assignments, wait_s)
        revoked = bool(self.assigned - share.partitions)
        await self._set_assigned(share.partitions)
        if revoked:
            # What we let go of was withheld from its new owner: rejoin so it is handed over.
            self._rejoin.set()

    async def _join(self, conn, meta, wait_s: float):
        """JoinGroup until it succeeds (a MEMBER_ID_REQUIRED round trip first), or _Rejoin."""
        for _ in range(3):
            body = conn.build(JOIN_GROUP, {
                "group_id": self.group_id,
                "session_timeout": self.config.session_timeout_ms,
                "rebalance_timeout": self.config.rebalance_timeout_ms,
                "member_id": self.member_id, "group_instance_id": None,
                "protocol_type": PROTOCOL_TYPE,
                "protocols": [{"name": PROTOCOL_NAME, "metadata": meta.encode()}],
                "reason": "dcmirror mirror (re)joining"})
            resp = await conn.send(body, timeout_s=wait_s)
            code = int(resp.error_code)
            if code == ErrorCode.member_id_required:
                self.member_id = resp.member_id
                continue
            if code == ErrorCode.unknown_member_id:
                self.member_id = ""
                await self._lose_all("the coordinator no longer knows this member")
                meta = self._metadata()
                continue
            if code == ErrorCode.rebalance_in_progress:
                continue
            self._check(code, "JoinGroup")
            return resp
        raise _Rejoin()

    async def _sync(self, conn, assignments: list[dict], wait_s: float) -> Assignment:
        """SyncGroup: this member's share, or _Rejoin (after letting go of everything when fenced)."""
        body = conn.build(SYNC_GROUP, {
            "group_id": self.group_id, "generation_id": self.generation,
            "member_id": self.member_id, "group_instance_id": None,
            "protocol_type": PROTOCOL_TYPE, "protocol_name": PROTOCOL_NAME,
            "assignments": assignments})
        resp = await conn.send(body, timeout_s=wait_s)
        code = int(resp.error_code)
        if code == ErrorCode.rebalance_in_progress:
            self._rejoin.set()
            raise _Rejoin()
        if code in _FENCED_CODES:
            if code == ErrorCode.unknown_member_id:
                self.member_id = ""
            await self._lose_all(f"SyncGroup answered {ErrorCode(code).name}")
            raise _Rejoin()
        self._check(code, "SyncGroup")
        self._last_ok = time.monotonic()
        return Assignment.decode(resp.assignment)

    def _lead(self, members) -> list[dict]:
        metas: dict[str, MemberMetadata] = {}
        foreign: list[str] = []
        for m in members:
            try:
                metas[m.member_id] = MemberMetadata.decode(bytes(m.metadata))
            except AssignmentDecodeError:
                foreign.append(m.member_id)
        view = self._view or frozenset()
        self._assigned_view = view
        plan = assign(metas, view)
        log.info("group %s: generation %d: leading %d member(s) over %d partition(s)%s",
                 self.group_id, self.generation, len(metas), len(view),
                 f", {len(plan.withheld)} withheld until revoked" if plan.withheld else "")
        if foreign:
            log.warning("group %s: members %s are not dcmirror mirrors; they get nothing",
                        self.group_id, foreign)
        out = [{"member_id": mid, "assignment": Assignment(tps, self.generation, self.member_id,
                                                           len(plan.withheld)).encode()}
               for mid, tps in sorted(plan.now.items())]
        out += [{"member_id": mid, "assignment": Assignment(frozenset(), self.generation).encode()}
                for mid in foreign]
        return out

    async def _heartbeat_until_rejoin(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await _until(stop, self._rejoin, self.config.heartbeat_interval_s)
            if stop.is_set():
                return
            if self._rejoin.is_set():
                raise _Rejoin()
            await self._check_session_expiry()
            if not self._joined:
                raise _Rejoin()
            conn = await self._conn()
            body = conn.build(HEARTBEAT, {"group_id": self.group_id, "generation_id": self.generation,
                                          "member_id": self.member_id, "group_instance_id": None})
            resp = await conn.send(body, timeout_s=self.config.session_timeout_ms / 1000)
            code = int(resp.error_code)
            if code == ErrorCode.none:
                self._last_ok = time.monotonic()
            elif code == ErrorCode.rebalance_in_progress:
                self._last_ok = time.monotonic()
                log.info("group %s: rebalance in progress; rejoining", self.group_id)
                self._rejoin.set()
                raise _Rejoin()
            elif code in _FENCED_CODES:
                if code == ErrorCode.unknown_member_id:
                    self.member_id = ""
                await self._lose_all(f"heartbeat answered {ErrorCode(code).name}")
                raise _Rejoin()
            else:
                self._check(code, "Heartbeat")


def member_for_link(cfg, link, *, dial, config: MembershipConfig | None = None) -> GroupMember:
    """A GroupMember for `link`, with its own client to the link's target cluster."""
    from mirror.config.clients import client_for_cluster

    client = client_for_cluster(cfg.clusters[link.target], f"{link.name}-member", dial=dial)
    return GroupMember(client, group_id_for(link.name), config or MembershipConfig())


async def _until(stop: asyncio.Event, other: asyncio.Event | None, timeout: float | None = None) -> bool:
    """Wait for `stop`, `other` or the timeout; True unless `stop` is set."""
    waits = [asyncio.ensure_future(stop.wait())]
    if other is not None:
        waits.append(asyncio.ensure_future(other.wait()))
    try:
        await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
    return not stop.is_set()
