"""The classic consumer-group protocol as a pure state machine, one `Group` per group id.

Why pure: rebalances are full of races (a member rejoins while the leader syncs, a static
member restarts mid-generation, a session expires during PreparingRebalance). Keeping the
rules free of sockets, clocks and asyncio lets tests walk every interleaving directly.
Time comes in as `now_ms`; deferred JoinGroup/SyncGroup answers leave as `Reply(token, …)`
effects, and durability needs as `PersistGroup`, which the driver carries out in order.

Behaviour follows Apache Kafka's GroupCoordinator/GroupMetadata (read, not copied): states
Empty → PreparingRebalance → CompletingRebalance → Stable, MEMBER_ID_REQUIRED on a first
join (v4+), static membership by group.instance.id, protocol selection by votes, rebalance
timeout removing members that did not rejoin, pending-sync timeout removing members that
never sent SyncGroup, and session expiry, and group.initial.rebalance.delay.ms (Kafka's
InitialDelayedJoin: an empty group's first rebalance waits the delay, even when everyone has
joined, so members starting together land in one generation; each member joining meanwhile
extends it by the delay, until the rebalance timeout is used up). Not implemented:
group.max.size. The KIP-848 consumer protocol is cluster/groups/consumer.py.
"""

from __future__ import annotations

import logging
import uuid
from typing import Callable

from kio.schema.errors import ErrorCode

from cluster.groups.model import (
    CommittedOffset,
    Effect,
    GroupConfig,
    GroupState,
    JoinMember,
    JoinRequest,
    JoinResult,
    LeaveOutcome,
    Member,
    PersistGroup,
    Reply,
    SyncResult,
    Token,
)
from cluster.groups.protocols import select_protocol, supports_any
from cluster.groups.subscription import subscribed_topics

logger = logging.getLogger(__name__)

E = ErrorCode
S = GroupState


def default_member_id(client_id: str) -> str:
    return f"{client_id}-{uuid.uuid4()}"


class Group:
    """One group: its members, generation and committed offsets."""

    def __init__(
        self,
        group_id: str,
        config: GroupConfig | None = None,
        new_member_id: Callable[[str], str] = default_member_id,
    ) -> None:
        self.group_id = group_id
        self.config = config or GroupConfig()
        self.new_member_id = new_member_id
        self.state = S.EMPTY
        self.generation_id = 0
        self.protocol_type: str | None = None
        self.protocol_name: str | None = None
        self.leader_id: str | None = None
        self.members: dict[str, Member] = {}
        self.pending: dict[str, int] = {}  # member id handed out by MEMBER_ID_REQUIRED -> expiry
        self.static: dict[str, str] = {}  # group.instance.id -> member id
        self.pending_sync: set[str] = set()
        self.rebalance_deadline_ms: int | None = None
        self.sync_deadline_ms: int | None = None
        # The initial rebalance delay in progress: when it ends, the time still allowed
        # after it, and whether a member joined during it (Kafka's InitialDelayedJoin).
        self.initial_delay_until_ms: int | None = None
        self.initial_delay_left_ms = 0
        self.joined_during_delay = False
        # When the group last became Empty after having members (Kafka's
        # currentStateTimestamp): offset expiry counts from here. None: never had members.
        self.empty_since_ms: int | None = None
        self.offsets: dict[tuple[str, int], CommittedOffset] = {}

    # ------------------------------------------------------------------ queries
    def is_empty(self) -> bool:
        return not self.members

    def subscribed_topics(self) -> set[str] | None:
        """Topics the members consume, or None if unknown (not the consumer protocol)."""
        if self.protocol_type != "consumer" or self.protocol_name is None:
            return None if self.members else set()
        return subscribed_topics([m.metadata(self.protocol_name) for m in self.members.values()])

    def join_members(self) -> tuple[JoinMember, ...]:
        return tuple(
            JoinMember(m.member_id, m.group_instance_id, m.metadata(self.protocol_name))
            for m in self.members.values()
        )

    def select_protocol(self) -> str | None:
        """The protocol every member supports with the most first-preference votes."""
        return select_protocol(list(self.members.values()), self.members.get(self.leader_id or ""))

    def _supports(self, protocol_type: str, protocols: tuple[tuple[str, bytes], ...]) -> bool:
        if self.state == S.EMPTY and not self.members:
            return bool(protocol_type) and bool(protocols)
        if protocol_type != self.protocol_type:
            return False
        return supports_any(list(self.members.values()), protocols)

    def is_fenced(self, member_id: str, instance_id: str | None) -> bool:
        return instance_id is not None and instance_id in self.static and self.static[instance_id] != member_id

    def _member_error(self, member_id: str, instance_id: str | None) -> ErrorCode | None:
        if self.is_fenced(member_id, instance_id):
            return E.fenced_instance_id
        if member_id not in self.members:
            return E.unknown_member_id
        return None

    # ------------------------------------------------------------------ JoinGroup
    def join(self, req: JoinRequest, token: Token, now_ms: int) -> list[Effect]:
        def fail(error: ErrorCode, member_id: str = req.member_id) -> list[Effect]:
            return [Reply(token, JoinResult(error, member_id=member_id))]

        if self.state == S.DEAD:
            return fail(E.coordinator_not_available)
        if not self.config.min_session_timeout_ms <= req.session_timeout_ms <= self.config.max_session_timeout_ms:
            return fail(E.invalid_session_timeout)
        if not self._supports(req.protocol_type, req.protocols):
            return fail(E.inconsistent_group_protocol)

        if req.member_id == "":
            if req.group_instance_id is not None:
                old = self.static.get(req.group_instance_id)
                if old is not None and old in self.members:
                    return self._replace_static(req, old, token, now_ms)
                return self._add_member(req, self.new_member_id(req.client_id), token, now_ms)
            if req.require_known_member_id:
                new_id = self.new_member_id(req.client_id)
                self.pending[new_id] = now_ms + req.session_timeout_ms
                return fail(E.member_id_required, new_id)
            return self._add_member(req, self.new_member_id(req.client_id), token, now_ms)

        if req.member_id in self.pending:
            del self.pending[req.member_id]
            return self._add_member(req, req.member_id, token, now_ms)
        error = self._member_error(req.member_id, req.group_instance_id)
        if error is not None:
            return fail(error)
        return self._rejoin(req, token, now_ms)

    def _add_member(self, req: JoinRequest, member_id: str, token: Token, now_ms: int) -> list[Effect]:
        if self.initial_delay_until_ms is not None:
            self.joined_during_delay = True
        if not self.members:
            self.protocol_type = req.protocol_type
        member = Member(
            member_id=member_id,
            group_instance_id=req.group_instance_id,
            client_id=req.client_id,
            client_host=req.client_host,
            session_timeout_ms=req.session_timeout_ms,
            rebalance_timeout_ms=req.rebalance_timeout_ms,
            protocol_type=req.protocol_type,
            protocols=req.protocols,
            last_heartbeat_ms=now_ms,
            join_token=token,
            is_new=True,
        )
        self.members[member_id] = member
        if req.group_instance_id is not None:
            self.static[req.group_instance_id] = member_id
        if self.leader_id is None:
            self.leader_id = member_id
        logger.debug("group %s: member %s joins", self.group_id, member_id)
        effects: list[Effect] = []
        if self.state != S.PREPARING_REBALANCE:
            effects += self._prepare_rebalance(now_ms)
        effects += self._maybe_complete_join(now_ms)
        return effects

    def _update(self, member: Member, req: JoinRequest, token: Token | None) -> None:
        member.protocols = req.protocols
        member.session_timeout_ms = req.session_timeout_ms
        member.rebalance_timeout_ms = req.rebalance_timeout_ms
        member.client_id = req.client_id
        member.client_host = req.client_host
        member.join_token = token

    def _current_generation(self, member: Member) -> JoinResult:
        is_leader = member.member_id == self.leader_id
        return JoinResult(
            E.none,
            member_id=member.member_id,
            generation_id=self.generation_id,
            protocol_type=self.protocol_type,
            protocol_name=self.protocol_name,
            leader=self.leader_id or "",
            members=self.join_members() if is_leader else (),
        )

    def _rejoin(self, req: JoinRequest, token: Token, now_ms: int) -> list[Effect]:
        member = self.members[req.member_id]
        member.last_heartbeat_ms = now_ms
        effects: list[Effect] = []
        if member.join_token is not None and member.join_token != token:
            # A newer JoinGroup from the same member supersedes the one still waiting.
            effects.append(Reply(member.join_token, JoinResult(E.rebalance_in_progress, member.member_id)))
            member.join_token = None
        unchanged = req.protocols == member.protocols
        if self.state == S.PREPARING_REBALANCE:
            self._update(member, req, token)
            return effects + self._maybe_complete_join(now_ms)
        if self.state == S.COMPLETING_REBALANCE and unchanged:
            return effects + [Reply(token, self._current_generation(member))]
        if self.state == S.STABLE and unchanged and member.member_id != self.leader_id:
            return effects + [Reply(token, self._current_generation(member))]
        self._update(member, req, token)
        return effects + self._prepare_rebalance(now_ms) + self._maybe_complete_join(now_ms)

    def _replace_static(self, req: JoinRequest, old_id: str, token: Token, now_ms: int) -> list[Effect]:
        """A known group.instance.id joins with no member id: it restarted; fence the old one."""
        member = self.members.pop(old_id)
        effects: list[Effect] = []
        if member.join_token is not None:
            effects.append(Reply(member.join_token, JoinResult(E.fenced_instance_id, old_id)))
        if member.sync_token is not None:
            effects.append(Reply(member.sync_token, SyncResult(E.fenced_instance_id)))
        member.join_token = member.sync_token = None
        new_id = self.new_member_id(req.client_id)
        old_protocols = member.protocols
        member.member_id = new_id
        self.members[new_id] = member
        self.static[req.group_instance_id or ""] = new_id
        if self.leader_id == old_id:
            self.leader_id = new_id
        if old_id in self.pending_sync:
            self.pending_sync.discard(old_id)
            self.pending_sync.add(new_id)
        member.last_heartbeat_ms = now_ms
        logger.info("group %s: static member %s replaced %s by %s", self.group_id, req.group_instance_id, old_id, new_id)
        if self.state == S.STABLE:
            self._update(member, req, None)
            if self.select_protocol() == self.protocol_name:
                is_leader = new_id == self.leader_id
                result = JoinResult(
                    E.none,
                    member_id=new_id,
                    generation_id=self.generation_id,
                    protocol_type=self.protocol_type,
                    protocol_name=self.protocol_name,
                    leader=self.leader_id or "",
                    skip_assignment=is_leader,
                    members=self.join_members() if is_leader else (),
                )
                return effects + [PersistGroup(self.group_id), Reply(token, result)]
            member.protocols = old_protocols
        self._update(member, req, token)
        if self.state != S.PREPARING_REBALANCE:
            effects += self._prepare_rebalance(now_ms)
        return effects + self._maybe_complete_join(now_ms)

    # ------------------------------------------------------------------ rebalance
    def _prepare_rebalance(self, now_ms: int) -> list[Effect]:
        effects: list[Effect] = []
        was_empty = self.state == S.EMPTY
        if self.state == S.COMPLETING_REBALANCE:
            for m in self.members.values():
                m.assignment = b""
                if m.sync_token is not None:
                    effects.append(Reply(m.sync_token, SyncResult(E.rebalance_in_progress)))
                    m.sync_token = None
        self.pending_sync.clear()
        self.sync_deadline_ms = None
        self.state = S.PREPARING_REBALANCE
        timeout = max((m.rebalance_timeout_ms for m in self.members.values()), default=0)
        self.rebalance_deadline_ms = now_ms + timeout
        delay = self.config.initial_rebalance_delay_ms
        if was_empty and delay > 0:
            self.initial_delay_until_ms = now_ms + delay
            self.initial_delay_left_ms = max(timeout - delay, 0)
            self.joined_during_delay = False
        logger.info("group %s: preparing rebalance (generation %d)", self.group_id, self.generation_id)
        return effects

    def _initial_delay_tick(self, now_ms: int) -> list[Effect]:
        """End or extend the initial rebalance delay once it is due."""
        if self.initial_delay_until_ms is None or now_ms < self.initial_delay_until_ms:
            return []
        if self.joined_during_delay and self.initial_delay_left_ms > 0:
            step = min(self.config.initial_rebalance_delay_ms, self.initial_delay_left_ms)
            self.initial_delay_left_ms -= step
            self.initial_delay_until_ms = now_ms + step
            self.joined_during_delay = False
            return []
        self.initial_delay_until_ms = None
        return self._maybe_complete_join(now_ms, force=True)

    def _maybe_complete_join(self, now_ms: int, force: bool = False) -> list[Effect]:
        if self.state != S.PREPARING_REBALANCE or self.initial_delay_until_ms is not None:
            return []
        all_joined = all(m.join_token is not None for m in self.members.values()) and not self.pending
        if not (all_joined or force):
            return []
        effects: list[Effect] = []
        for m in [m for m in self.members.values() if m.join_token is None]:
            logger.info("group %s: member %s did not rejoin in time", self.group_id, m.member_id)
            effects += self._remove(m.member_id, rebalance=False)
        self.generation_id += 1
        self.rebalance_deadline_ms = None
        if not self.members:
            self.state = S.EMPTY
            self.empty_since_ms = now_ms
            self.protocol_name = None
            self.leader_id = None
            return effects + [PersistGroup(self.group_id)]
        self.protocol_name = self.select_protocol()
        if self.leader_id not in self.members:
            self.leader_id = next(iter(self.members))
        self.state = S.COMPLETING_REBALANCE
        members = self.join_members()
        for m in self.members.values():
            assert m.join_token is not None
            is_leader = m.member_id == self.leader_id
            result = JoinResult(
                E.none,
                member_id=m.member_id,
                generation_id=self.generation_id,
                protocol_type=self.protocol_type,
                protocol_name=self.protocol_name,
                leader=self.leader_id or "",
                members=members if is_leader else (),
            )
            effects.append(Reply(m.join_token, result))
            m.join_token = None
            m.is_new = False
            m.last_heartbeat_ms = now_ms
        self.pending_sync = set(self.members)
        self.sync_deadline_ms = now_ms + max(m.rebalance_timeout_ms for m in self.members.values())
        logger.info(
            "group %s: generation %d with %d members, protocol %s, leader %s",
            self.group_id, self.generation_id, len(self.members), self.protocol_name, self.leader_id,
        )
        return effects

    def _remove(self, member_id: str, rebalance: bool = True, now_ms: int = 0) -> list[Effect]:
        member = self.members.pop(member_id)
        effects: list[Effect] = []
        if member.join_token is not None:
            effects.append(Reply(member.join_token, JoinResult(E.unknown_member_id, member_id)))
        if member.sync_token is not None:
            effects.append(Reply(member.sync_token, SyncResult(E.unknown_member_id)))
        if member.group_instance_id is not None and self.static.get(member.group_instance_id) == member_id:
            del self.static[member.group_instance_id]
        self.pending_sync.discard(member_id)
        if self.leader_id == member_id:
            self.leader_id = next(iter(self.members), None)
        if not rebalance:
            return effects
        if self.state in (S.STABLE, S.COMPLETING_REBALANCE):
            effects += self._prepare_rebalance(now_ms)
        return effects + self._maybe_complete_join(now_ms)

    # ------------------------------------------------------------------ SyncGroup
    def sync(
        self,
        generation_id: int,
        member_id: str,
        instance_id: str | None,
        protocol_type: str | None,
        protocol_name: str | None,
        assignments: dict[str, bytes],
        token: Token,
        now_ms: int,
    ) -> list[Effect]:
        def fail(error: ErrorCode) -> list[Effect]:
            return [Reply(token, SyncResult(error))]

        if self.state == S.DEAD:
            return fail(E.coordinator_not_available)
        error = self._member_error(member_id, instance_id)
        if error is not None:
            return fail(error)
        if generation_id != self.generation_id:
            return fail(E.illegal_generation)
        if (protocol_type is not None and protocol_type != self.protocol_type) or (
            protocol_name is not None and protocol_name != self.protocol_name
        ):
            return fail(E.inconsistent_group_protocol)
        if self.state == S.PREPARING_REBALANCE:
            return fail(E.rebalance_in_progress)
        member = self.members[member_id]
        member.last_heartbeat_ms = now_ms
        self.pending_sync.discard(member_id)
        if self.state == S.STABLE:
            return [Reply(token, self._sync_result(member))]
        # CompletingRebalance
        effects: list[Effect] = []
        if member.sync_token is not None and member.sync_token != token:
            effects.append(Reply(member.sync_token, SyncResult(E.rebalance_in_progress)))
        member.sync_token = token
        if member_id != self.leader_id:
            return effects
        for m in self.members.values():
            m.assignment = assignments.get(m.member_id, b"")
        self.state = S.STABLE
        effects.append(PersistGroup(self.group_id))
        for m in self.members.values():
            if m.sync_token is not None:
                effects.append(Reply(m.sync_token, self._sync_result(m)))
                m.sync_token = None
        if not self.pending_sync:
            self.sync_deadline_ms = None
        return effects

    def _sync_result(self, member: Member) -> SyncResult:
        return SyncResult(E.none, self.protocol_type, self.protocol_name, member.assignment)

    # ------------------------------------------------------------------ Heartbeat
    def heartbeat(self, generation_id: int, member_id: str, instance_id: str | None, now_ms: int) -> ErrorCode:
        if self.state == S.DEAD:
            return E.coordinator_not_available
        error = self._member_error(member_id, instance_id)
        if error is not None:
            return error
        if generation_id != self.generation_id:
            return E.illegal_generation
        self.members[member_id].last_heartbeat_ms = now_ms
        if self.state == S.PREPARING_REBALANCE:
            return E.rebalance_in_progress
        return E.none

    # ------------------------------------------------------------------ LeaveGroup
    def leave(self, members: list[tuple[str, str | None]], now_ms: int) -> LeaveOutcome:
        """Remove each (member_id, group_instance_id); a static member may leave by instance id alone."""
        out = LeaveOutcome()
        for member_id, instance_id in members:
            if self.state == S.DEAD:
                out.errors.append((member_id, instance_id, E.coordinator_not_available))
                continue
            target = member_id
            if instance_id is not None:
                known = self.static.get(instance_id)
                if known is None:
                    out.errors.append((member_id, instance_id, E.unknown_member_id))
                    continue
                if member_id and member_id != known:
                    out.errors.append((member_id, instance_id, E.fenced_instance_id))
                    continue
                target = known
            if target in self.pending:
                del self.pending[target]
                out.effects += self._maybe_complete_join(now_ms)
            elif target in self.members:
                logger.info("group %s: member %s leaves", self.group_id, target)
                out.effects += self._remove(target, now_ms=now_ms)
            else:
                out.errors.append((member_id, instance_id, E.unknown_member_id))
                continue
            out.errors.append((member_id, instance_id, E.none))
        return out

    # ------------------------------------------------------------------ timers
    def tick(self, now_ms: int) -> list[Effect]:
        """Expire sessions, pending member ids and rebalance/sync deadlines due by `now_ms`."""
        effects: list[Effect] = []
        for pid, deadline in list(self.pending.items()):
            if now_ms >= deadline:
                del self.pending[pid]
                effects += self._maybe_complete_join(now_ms)
        for m in list(self.members.values()):
            if m.member_id not in self.members:
                continue
            if m.join_token is not None or m.sync_token is not None:
                if m.is_new and m.join_token is not None and now_ms >= m.last_heartbeat_ms + self.config.new_member_join_timeout_ms:
                    effects += self._remove(m.member_id, now_ms=now_ms)
                continue
            if now_ms >= m.last_heartbeat_ms + m.session_timeout_ms:
                logger.info("group %s: member %s session expired", self.group_id, m.member_id)
                effects += self._remove(m.member_id, now_ms=now_ms)
        if self.initial_delay_until_ms is not None:
            effects += self._initial_delay_tick(now_ms)  # in place of the rebalance deadline
        elif (self.state == S.PREPARING_REBALANCE and self.rebalance_deadline_ms is not None
              and now_ms >= self.rebalance_deadline_ms):
            effects += self._maybe_complete_join(now_ms, force=True)
        if (
            self.state in (S.COMPLETING_REBALANCE, S.STABLE)
            and self.sync_deadline_ms is not None
            and now_ms >= self.sync_deadline_ms
        ):
            self.sync_deadline_ms = None
            late = [mid for mid in self.pending_sync if mid in self.members]
            self.pending_sync.clear()
            if late:
                logger.info("group %s: members %s never sent SyncGroup", self.group_id, late)
                for mid in late:
                    effects += self._remove(mid, rebalance=False)
                effects += self._prepare_rebalance(now_ms) + self._maybe_complete_join(now_ms)
        return effects

    def next_deadline_ms(self) -> int | None:
        """The earliest time `tick` could change something (lets the driver sleep precisely)."""
        times = list(self.pending.values())
        times += [m.last_heartbeat_ms + m.session_timeout_ms for m in self.members.values()]
        if self.rebalance_deadline_ms is not None:
            times.append(self.rebalance_deadline_ms)
        if self.initial_delay_until_ms is not None:
            times.append(self.initial_delay_until_ms)
        if self.sync_deadline_ms is not None:
            times.append(self.sync_deadline_ms)
        return min(times, default=None)
