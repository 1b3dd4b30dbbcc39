"""A member of a classic Kafka group with a pluggable protocol (Connect's AbstractCoordinator).

`GroupMembership` runs the classic group protocol against any Kafka-protocol coordinator:
FindCoordinator, JoinGroup (with the MEMBER_ID_REQUIRED round trip of KIP-394),
SyncGroup, Heartbeat every interval, LeaveGroup on a clean stop. What the members share
and how it is divided is not its business: a `GroupProtocol` says what this member tells
the group when it joins, how the leader divides the work, and what to do with a share —
the split Kafka Connect makes between AbstractCoordinator and WorkerCoordinator, and the
consumer between ConsumerCoordinator and its assignors.

Membership is lost when the coordinator answers UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION or
FENCED_INSTANCE_ID, or when no heartbeat was answered for a whole session timeout (the
coordinator has dropped us by then): the protocol hears `on_lost` before the member
joins again, so it can stop using what it was given. Errors talking to the coordinator
are retried after a backoff, with one log line per change of error.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Protocol

from kio.schema.errors import ErrorCode

from .client import KafkaClient
from .connection import BrokerConnection
from .errors import KafkaError, check
from .groups import COORDINATOR_CODES
from .metadata import BrokerInfo
from .waits import until

log = logging.getLogger(__name__)

JOIN_GROUP, HEARTBEAT, LEAVE_GROUP, SYNC_GROUP = 11, 12, 13, 14

#: The coordinator no longer knows us in this generation: what we were given may be elsewhere.
FENCED_CODES = frozenset(int(c) for c in (
    ErrorCode.unknown_member_id, ErrorCode.illegal_generation, ErrorCode.fenced_instance_id))


@dataclass(frozen=True)
class GroupTimeouts:
    session_timeout_ms: int = 10_000
    rebalance_timeout_ms: int = 60_000
    heartbeat_interval_s: float = 3.0
    retry_backoff_s: float = 0.5


class GroupProtocol(Protocol):
    """The member's side of the group (Connect's WorkerCoordinator): everything but the protocol loop."""

    protocol_type: str
    protocol_name: str

    async def join_metadata(self) -> bytes:
        """What this member tells the group in JoinGroup (may first let go of work it cannot describe)."""

    def assign(self, generation: int, leader_id: str, members: list[tuple[str, bytes]]) -> dict[str, bytes]:
        """As the elected leader: {member id: assignment} from every member's join metadata."""

    async def on_assignment(self, generation: int, assignment: bytes) -> None:
        """This member's share after SyncGroup."""

    async def on_lost(self, why: str) -> None:
        """The coordinator may have given our share away: stop using it now."""

    async def on_leave(self) -> None:
        """A clean stop: let go of the share before LeaveGroup tells the others to take it."""

    async def without_coordinator(self, stop: asyncio.Event) -> None:
        """The cluster offers no classic groups: run alone until ``stop``."""


class Rejoin(Exception):
    """Leave the heartbeat loop and join again (keeping the share, unless told otherwise)."""


class GroupMembership:
    """One member's membership in ``group_id``; `run` keeps it alive until ``stop``."""

    def __init__(self, client: KafkaClient, group_id: str, protocol: GroupProtocol,
                 timeouts: GroupTimeouts | None = None, *, join_reason: str = "joining",
                 leave_reason: str = "leaving") -> None:
        self.client = client
        self.group_id = group_id
        self.protocol = protocol
        self.timeouts = timeouts or GroupTimeouts()
        self.join_reason, self.leave_reason = join_reason, leave_reason
        self.member_id = ""
        self.generation = -1
        self.leader_id = ""
        self.joined = False
        #: without a group coordinator the protocol runs alone (`without_coordinator`)
        self.standalone = False
        self.rebalances = 0
        self._rejoin = asyncio.Event()
        self._coordinator: BrokerInfo | None = None
        self._last_ok = time.monotonic()

    @property
    def is_leader(self) -> bool:
        return self.joined and bool(self.member_id) and self.member_id == self.leader_id

    @property
    def rejoin_requested(self) -> bool:
        return self._rejoin.is_set()

    def request_rejoin(self) -> None:
        """Join again at the next heartbeat (the protocol wants its work divided anew)."""
        self._rejoin.set()

    # ---- the loop ----------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        failing = ""
        try:
            while not stop.is_set():
                try:
                    if self.standalone or not await self._group_capable():
                        self.standalone = True
                        await self.protocol.without_coordinator(stop)
                        return
                    if not self.joined or self._rejoin.is_set():
                        await self._join_and_sync()
                    if self.joined:
                        await self._heartbeat_until_rejoin(stop)
                    if failing:
                        log.info("group %s: coordinator reachable again", self.group_id)
                        failing = ""
                except Rejoin:
                    self._rejoin.set()
                except (KafkaError, OSError, asyncio.TimeoutError) as exc:
                    msg = f"{type(exc).__name__}: {exc}"
                    if msg != failing:
                        log.warning("group %s: %s; retrying", self.group_id, msg)
                        failing = msg
                    self._coordinator = None
                    await self._check_session_expiry()
                    await until(stop, None, self.timeouts.retry_backoff_s)
        finally:
            await self.leave()

    async def _group_capable(self) -> bool:
        conn = await self.client.any_connection()
        return all(conn.versions.supports(k) for k in (JOIN_GROUP, SYNC_GROUP, HEARTBEAT))

    async def leave(self) -> None:
        """Let go of the share, then LeaveGroup, so the others take over without waiting
        for a session timeout; a failure only means the coordinator will time us out."""
        if not self.joined:
            return
        self.joined = False
        try:
            await self.protocol.on_leave()
            conn = await asyncio.wait_for(self._conn(), 5)
            body = conn.build(LEAVE_GROUP, {
                "group_id": self.group_id, "member_id": self.member_id,
                "members": [{"member_id": self.member_id, "group_instance_id": None, "reason": self.leave_reason}]})
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
        if int(code) in COORDINATOR_CODES:
            self._coordinator = None
        check(code, context=f"{what} {self.group_id}")

    async def _lose(self, why: str, code: int | None = None) -> None:
        if code == ErrorCode.unknown_member_id:
            self.member_id = ""
        await self.protocol.on_lost(why)
        self.joined = False

    async def _check_session_expiry(self) -> None:
        """Unanswered for a whole session: the coordinator has dropped us by now."""
        if self.joined and time.monotonic() - self._last_ok > self.timeouts.session_timeout_ms / 1000:
            await self._lose("no heartbeat answered within the session timeout")

    async def _join_and_sync(self) -> None:
        self._rejoin.clear()
        try:
            await self._join_and_sync_once()
        except BaseException:
            self._rejoin.set()  # a half-done rebalance is redone from JoinGroup
            raise

    async def _join_and_sync_once(self) -> None:
        metadata = await self.protocol.join_metadata()
        conn = await self._conn()
        wait_s = self.timeouts.rebalance_timeout_ms / 1000 + 5
        resp = await self._join(conn, metadata, wait_s)
        self.member_id, self.generation, self.leader_id = resp.member_id, int(resp.generation_id), resp.leader
        self.joined = True
        self._last_ok = time.monotonic()
        self.rebalances += 1
        assignments: dict[str, bytes] = {}
        if self.member_id == self.leader_id and not getattr(resp, "skip_assignment", False):
            assignments = self.protocol.assign(self.generation, self.member_id,
                                               [(m.member_id, bytes(m.metadata)) for m in resp.members])
        assignment = await self._sync(conn, assignments, wait_s)
        await self.protocol.on_assignment(self.generation, assignment)

    async def _join(self, conn: BrokerConnection, metadata: bytes, wait_s: float):
        """JoinGroup until it succeeds (a MEMBER_ID_REQUIRED round trip first), or Rejoin."""
        for _ in range(3):
            body = conn.build(JOIN_GROUP, {
                "group_id": self.group_id,
                "session_timeout": self.timeouts.session_timeout_ms,
                "rebalance_timeout": self.timeouts.rebalance_timeout_ms,
                "member_id": self.member_id, "group_instance_id": None,
                "protocol_type": self.protocol.protocol_type,
                "protocols": [{"name": self.protocol.protocol_name, "metadata": metadata}],
                "reason": self.join_reason})
            resp = await conn.send(body, timeout_s=wait_s)
            code = int(resp.error_code)
            if code == ErrorCode.member_id_required:
                self.member_id = resp.member_id
                continue
            if code == ErrorCode.unknown_member_id:
                await self._lose("the coordinator no longer knows this member", code)
                metadata = await self.protocol.join_metadata()
                continue
            if code == ErrorCode.rebalance_in_progress:
                continue
            self._check(code, "JoinGroup")
            return resp
        raise Rejoin()

    async def _sync(self, conn: BrokerConnection, assignments: dict[str, bytes], wait_s: float) -> bytes:
        """SyncGroup: this member's assignment, or Rejoin (after `on_lost` when fenced)."""
        body = conn.build(SYNC_GROUP, {
            "group_id": self.group_id, "generation_id": self.generation,
            "member_id": self.member_id, "group_instance_id": None,
            "protocol_type": self.protocol.protocol_type, "protocol_name": self.protocol.protocol_name,
            "assignments": [{"member_id": m, "assignment": a} for m, a in assignments.items()]})
        resp = await conn.send(body, timeout_s=wait_s)
        code = int(resp.error_code)
        if code == ErrorCode.rebalance_in_progress:
            raise Rejoin()
        if code in FENCED_CODES:
            await self._lose(f"SyncGroup answered {ErrorCode(code).name}", code)
            raise Rejoin()
        self._check(code, "SyncGroup")
        self._last_ok = time.monotonic()
        return bytes(resp.assignment)

    async def _heartbeat_until_rejoin(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await until(stop, self._rejoin, self.timeouts.heartbeat_interval_s)
            if stop.is_set():
                return
            if self._rejoin.is_set():
                raise Rejoin()
            await self._check_session_expiry()
            if not self.joined:
                raise Rejoin()
            conn = await self._conn()
            body = conn.build(HEARTBEAT, {"group_id": self.group_id, "generation_id": self.generation,
                                          "member_id": self.member_id, "group_instance_id": None})
            resp = await conn.send(body, timeout_s=self.timeouts.session_timeout_ms / 1000)
            code = int(resp.error_code)
            if code == ErrorCode.none:
                self._last_ok = time.monotonic()
            elif code == ErrorCode.rebalance_in_progress:
                self._last_ok = time.monotonic()
                log.info("group %s: rebalance in progress; rejoining", self.group_id)
                raise Rejoin()
            elif code in FENCED_CODES:
                await self._lose(f"heartbeat answered {ErrorCode(code).name}", code)
                raise Rejoin()
            else:
                self._check(code, "Heartbeat")
