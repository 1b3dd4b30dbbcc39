"""The asyncio driver of the group coordinator: owns the pure `Group` machines and the store.

The broker's handlers call one async method per API and get back a plain dict shaped like
the kio response (field names as in `kio.schema.<api>.vN.response`). This module supplies
what the pure machine cannot: the clock, a periodic tick for session/rebalance timeouts,
futures for JoinGroup/SyncGroup answers that wait for other members, and durability —
each `Persist*` effect is written to the journal before any later `Reply` is released, so
an acknowledged commit survives `kill -9`.

Everything runs on the broker's event loop, so there are no locks: each method runs its
state transition and its effects without awaiting in between.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from pathlib import Path
from typing import Any, Callable, Iterable

from kio.schema.errors import ErrorCode

from cluster.periodic import start_ticker, stop_ticker
from cluster.groups import offsets as offset_rules
from cluster.groups.model import (
    CommittedOffset,
    DeleteGroup,
    Effect,
    GroupConfig,
    GroupState,
    JoinRequest,
    JoinResult,
    PersistGroup,
    PersistOffsets,
    Reply,
    SyncResult,
)
from cluster.groups.consumer import ConsumerGroup
from cluster.groups.consumer_coordinator import ConsumerGroupsMixin
from cluster.groups.consumer_model import ConsumerConfig
from cluster.groups.offsets import OffsetToCommit
from cluster.groups.records import encode_any_group, encode_offset, group_key, offset_key, restore
from cluster.groups.state import Group, default_member_id
from cluster.groups.store import GroupStore

logger = logging.getLogger(__name__)

E = ErrorCode
S = GroupState
CLASSIC_GROUP_TYPE = "classic"


def wall_ms() -> int:
    return int(time.time() * 1000)


def _join_dict(r: JoinResult) -> dict[str, Any]:
    return {
        "error_code": r.error,
        "member_id": r.member_id,
        "generation_id": r.generation_id,
        "protocol_type": r.protocol_type,
        "protocol_name": r.protocol_name,
        "leader": r.leader,
        "skip_assignment": r.skip_assignment,
        "members": [
            {"member_id": m.member_id, "group_instance_id": m.group_instance_id, "metadata": m.metadata}
            for m in r.members
        ],
    }


def _sync_dict(r: SyncResult) -> dict[str, Any]:
    return {
        "error_code": r.error,
        "protocol_type": r.protocol_type,
        "protocol_name": r.protocol_name,
        "assignment": r.assignment,
    }


class GroupCoordinator(ConsumerGroupsMixin):
    """Coordinates every group on this node (a single-coordinator cluster), classic and
    KIP-848 consumer groups alike (the latter's APIs: cluster/groups/consumer_coordinator.py)."""

    def __init__(
        self,
        data_dir: Path,
        node_id: int,
        *,
        config: GroupConfig | None = None,
        fsync: str = "never",
        tick_interval_s: float = 0.2,
        clock: Callable[[], int] = wall_ms,
        new_member_id: Callable[[str], str] = default_member_id,
        compact_min_bytes: int = 1 << 20,
        cleanup_interval_s: float = 600.0,
        consumer_config: ConsumerConfig | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.node_id = node_id
        self.config = config or GroupConfig()
        self.store = GroupStore(self.data_dir, fsync=fsync, compact_min_bytes=compact_min_bytes)
        self.tick_interval_s = tick_interval_s
        self.clock = clock
        self.new_member_id = new_member_id
        self.groups: dict[str, Group] = {}
        self._tokens = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._ticker: asyncio.Task[None] | None = None
        self.cleanup_interval_ms = int(cleanup_interval_s * 1000)
        self._last_cleanup_ms = 0
        self._init_consumer(consumer_config)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        live = self.store.open()
        self.groups = restore(live, self.clock(), self.config, self.new_member_id, self.consumer_config)
        self._last_cleanup_ms = self.clock()
        logger.info("coordinator %d: restored %d groups from %s", self.node_id, len(self.groups), self.data_dir)
        self._ticker = start_ticker(self.tick, self.tick_interval_s, "groups-tick", logger)

    async def close(self) -> None:
        await stop_ticker(self._ticker)
        self._ticker = None
        for fut in self._waiting.values():
            if not fut.done():
                fut.set_exception(ConnectionAbortedError("coordinator closed"))
        self._waiting.clear()
        self.store.close()

    def tick(self) -> None:
        """Run timers once (the loop calls this; tests may too)."""
        now = self.clock()
        for group in list(self.groups.values()):
            if isinstance(group, ConsumerGroup):
                self._apply(group.tick(now, self.topics))
            else:
                self._apply(group.tick(now))
        if now - self._last_cleanup_ms >= self.cleanup_interval_ms:
            self._last_cleanup_ms = now
            self.cleanup()
        if self.store.fsync == "interval":
            self.store.sync()

    def cleanup(self) -> None:
        """Expire offsets (offsets.retention.minutes, cluster/groups/offsets.py `expire`), then
        drop empty groups with no offsets, on Kafka's cadence (offsets.retention.check.interval.ms).

        Such a group reappears as soon as someone joins or commits.
        """
        now, retention = self.clock(), self.config.offsets_retention_ms
        for group in list(self.groups.values()):
            subscribed = None
            if isinstance(group, ConsumerGroup):
                subscribed = group.subscribed_topics() if group.members else set()
            self._apply(offset_rules.expire(group, now, retention, subscribed))  # type: ignore[arg-type]
            if isinstance(group, ConsumerGroup):
                if not group.members and not group.offsets:
                    del self.groups[group.group_id]
                    self._apply([DeleteGroup(group.group_id)])
                continue
            if group.state == S.EMPTY and not group.members and not group.pending and not group.offsets:
                del self.groups[group.group_id]
                self._apply([DeleteGroup(group.group_id)])

    # ------------------------------------------------------------------ effects
    def _apply(self, effects: Iterable[Effect]) -> None:
        """Carry out effects in order; a failed write turns every later answer into an error.

        Nothing may be acknowledged that is not durable, so after a journal write fails the
        remaining replies become COORDINATOR_NOT_AVAILABLE (clients retry) and the error is
        re-raised for the caller's request.
        """
        failure: OSError | None = None
        for effect in effects:
            if isinstance(effect, Reply):
                result = effect.result
                if failure is not None:
                    result = (
                        JoinResult(E.coordinator_not_available)
                        if isinstance(result, JoinResult)
                        else SyncResult(E.coordinator_not_available)
                    )
                fut = self._waiting.pop(effect.token, None)
                if fut is not None and not fut.done():
                    fut.set_result(result)
                continue
            if failure is not None:
                continue
            try:
                self._persist(effect)
            except OSError as exc:
                logger.error("group journal write failed: %s", exc)
                failure = exc
        if failure is not None:
            raise failure

    def _persist(self, effect: Effect) -> None:
        if isinstance(effect, PersistGroup):
            group = self.groups.get(effect.group_id)
            if group is not None:
                self.store.append([(group_key(group.group_id), encode_any_group(group))])
        elif isinstance(effect, PersistOffsets):
            self.store.append(
                (offset_key(effect.group_id, t, p), None if v is None else encode_offset(v))
                for t, p, v in effect.offsets
            )
        elif isinstance(effect, DeleteGroup):
            self.store.append([(group_key(effect.group_id), None)])

    async def _deferred(self, run: Callable[[int], list[Effect]]) -> Any:
        token = next(self._tokens)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[token] = fut
        try:
            self._apply(run(token))
            return await fut
        finally:
            self._waiting.pop(token, None)

    def _group(self, group_id: str) -> Group:
        group = self.groups.get(group_id)
        if group is None:
            group = self.groups[group_id] = Group(group_id, self.config, self.new_member_id)
        return group

    # ------------------------------------------------------------------ membership APIs
    async def join_group(
        self,
        group_id: str,
        member_id: str,
        group_instance_id: str | None,
        protocol_type: str,
        protocols: list[tuple[str, bytes]],
        session_timeout_ms: int,
        rebalance_timeout_ms: int,
        client_id: str = "",
        client_host: str = "",
        require_known_member_id: bool = True,
    ) -> dict[str, Any]:
        if not group_id:
            return _join_dict(JoinResult(E.invalid_group_id, member_id))
        if group_id not in self.groups and member_id:
            return _join_dict(JoinResult(E.unknown_member_id, member_id))
        if not self.classic_from_consumer(group_id):
            return _join_dict(JoinResult(E.inconsistent_group_protocol, member_id))
        req = JoinRequest(
            member_id=member_id,
            group_instance_id=group_instance_id,
            client_id=client_id,
            client_host=client_host,
            session_timeout_ms=session_timeout_ms,
            rebalance_timeout_ms=rebalance_timeout_ms if rebalance_timeout_ms > 0 else session_timeout_ms,
            protocol_type=protocol_type,
            protocols=tuple(protocols),
            require_known_member_id=require_known_member_id,
        )
        group = self._group(group_id)
        result = await self._deferred(lambda token: group.join(req, token, self.clock()))
        return _join_dict(result)

    async def sync_group(
        self,
        group_id: str,
        generation_id: int,
        member_id: str,
        group_instance_id: str | None,
        assignments: dict[str, bytes],
        protocol_type: str | None = None,
        protocol_name: str | None = None,
    ) -> dict[str, Any]:
        if not group_id:
            return _sync_dict(SyncResult(E.invalid_group_id))
        group = self.groups.get(group_id)
        if group is None or isinstance(group, ConsumerGroup):
            return _sync_dict(SyncResult(E.unknown_member_id))
        result = await self._deferred(
            lambda token: group.sync(
                generation_id, member_id, group_instance_id, protocol_type, protocol_name, assignments, token, self.clock()
            )
        )
        return _sync_dict(result)

    async def heartbeat(
        self, group_id: str, generation_id: int, member_id: str, group_instance_id: str | None = None
    ) -> dict[str, Any]:
        if not group_id:
            return {"error_code": E.invalid_group_id}
        group = self.groups.get(group_id)
        if group is None or isinstance(group, ConsumerGroup):
            return {"error_code": E.unknown_member_id}
        return {"error_code": group.heartbeat(generation_id, member_id, group_instance_id, self.clock())}

    async def leave_group(self, group_id: str, members: list[tuple[str, str | None]]) -> dict[str, Any]:
        """LeaveGroup; `members` are (member_id, group_instance_id) pairs."""
        if not group_id:
            return {"error_code": E.invalid_group_id, "members": []}
        group = self.groups.get(group_id)
        if group is None or isinstance(group, ConsumerGroup):
            per = [(m, i, E.unknown_member_id) for m, i in members]
        else:
            outcome = group.leave(members, self.clock())
            self._apply(outcome.effects)
            per = outcome.errors
        return {
            "error_code": E.none,
            "members": [{"member_id": m, "group_instance_id": i, "error_code": e} for m, i, e in per],
        }

    # ------------------------------------------------------------------ offset APIs
    async def offset_commit(
        self,
        group_id: str,
        generation_id: int,
        member_id: str,
        group_instance_id: str | None,
        topics: list[dict[str, Any]],
        api_version: int = 9,
    ) -> dict[str, Any]:
        """`topics` as in the request: [{name, partitions: [{partition_index, committed_offset,
        committed_leader_epoch?, committed_metadata?}]}]."""
        wanted = [
            OffsetToCommit(
                t["name"],
                p["partition_index"],
                p["committed_offset"],
                p.get("committed_leader_epoch", -1),
                p.get("committed_metadata", ""),
            )
            for t in topics
            for p in t["partitions"]
        ]
        group = self.groups.get(group_id)
        if not group_id:
            errors = [E.invalid_group_id] * len(wanted)
        elif group is None and generation_id >= 0:
            errors = [E.illegal_generation] * len(wanted)
        elif isinstance(group, ConsumerGroup):
            errors, effects = self.consumer_offset_commit(group, member_id, generation_id, wanted, api_version)
            self._apply(effects)
        else:
            group = self._group(group_id)
            errors, effects = offset_rules.commit(
                group, generation_id, member_id, group_instance_id, wanted, self.clock()
            )
            self._apply(effects)
        out: dict[str, list[dict[str, Any]]] = {}
        for o, e in zip(wanted, errors):
            out.setdefault(o.topic, []).append({"partition_index": o.partition, "error_code": e})
        return {"topics": [{"name": t, "partitions": ps} for t, ps in out.items()]}

    def commit_transactional_offsets(
        self, group_id: str, rows: Iterable[tuple[str, int, int, int, str | None]]
    ) -> None:
        """Make a committed transaction's offsets visible (called by the txn coordinator).

        `rows` are (topic, partition, offset, leader_epoch, metadata). The generation was
        checked when TxnOffsetCommit arrived, so no membership checks apply here.
        """
        group = self._group(group_id)
        now = self.clock()
        written = []
        for topic, partition, offset, leader_epoch, metadata in rows:
            value = CommittedOffset(offset, leader_epoch, metadata or "", now)
            group.offsets[(topic, partition)] = value
            written.append((topic, partition, value))
        self._apply([PersistOffsets(group_id, tuple(written))])

    async def offset_fetch(self, group_id: str, topics: dict[str, list[int]] | None,
                           member: tuple[str | None, int] | None = None) -> dict[str, Any]:
        """One group's committed offsets; `topics=None` means all of them. `member` (OffsetFetch
        v9+: member id and epoch) is checked against a consumer group's member, as Kafka does."""
        group = self.groups.get(group_id)
        if member is not None and isinstance(group, ConsumerGroup):
            error = group.fetch_error(*member)
            if error is not None:
                return {"group_id": group_id, "error_code": error, "topics": []}
        found = offset_rules.fetch(group, topics)
        return {
            "group_id": group_id,
            "error_code": E.none,
            "topics": [
                {
                    "name": topic,
                    "partitions": [
                        {
                            "partition_index": p,
                            "committed_offset": -1 if v is None else v.offset,
                            "committed_leader_epoch": -1 if v is None else v.leader_epoch,
                            "metadata": "" if v is None else v.metadata,
                            "error_code": E.none,
                        }
                        for p, v in parts.items()
                    ],
                }
                for topic, parts in found.items()
            ],
        }

    async def offset_delete(self, group_id: str, topics: dict[str, list[int]]) -> dict[str, Any]:
        group = self.groups.get(group_id)
        if group is None:
            return {"error_code": E.group_id_not_found, "topics": []}
        error, per, effects = offset_rules.delete(group, topics)
        self._apply(effects)
        return {
            "error_code": error,
            "topics": [
                {"name": t, "partitions": [{"partition_index": p, "error_code": e} for p, e in ps.items()]}
                for t, ps in per.items()
            ],
        }

    # ------------------------------------------------------------------ admin APIs
    async def describe_groups(self, group_ids: list[str]) -> list[dict[str, Any]]:
        return [self._describe(gid) for gid in group_ids]

    def _describe(self, group_id: str) -> dict[str, Any]:
        group = self.groups.get(group_id)
        if group is None or isinstance(group, ConsumerGroup):  # Kafka: not a classic group
            return {"error_code": E.none, "group_id": group_id, "group_state": "Dead", "protocol_type": "",
                    "protocol_data": "", "members": [], "authorized_operations": -(2**31)}
        stable = group.state == S.STABLE
        return {
            "error_code": E.none,
            "group_id": group_id,
            "group_state": group.state.value,
            "protocol_type": group.protocol_type or "",
            "protocol_data": (group.protocol_name or "") if stable else "",
            "members": [
                {
                    "member_id": m.member_id,
                    "group_instance_id": m.group_instance_id,
                    "client_id": m.client_id,
                    "client_host": m.client_host,
                    "member_metadata": m.metadata(group.protocol_name) if stable else b"",
                    "member_assignment": m.assignment if stable else b"",
                }
                for m in group.members.values()
            ],
            "authorized_operations": -(2**31),
        }

    async def list_groups(
        self, states_filter: list[str] | None = None, types_filter: list[str] | None = None
    ) -> dict[str, Any]:
        states = {s.lower() for s in states_filter or []}
        types = {t.lower() for t in types_filter or []}
        listed = []
        for group in self.groups.values():
            kind = "consumer" if isinstance(group, ConsumerGroup) else CLASSIC_GROUP_TYPE
            if states and group.state.value.lower() not in states:
                continue
            if types and kind not in types:
                continue
            listed.append(
                {
                    "group_id": group.group_id,
                    "protocol_type": group.protocol_type or "",
                    "group_state": group.state.value,
                    "group_type": kind,
                }
            )
        return {"error_code": E.none, "groups": listed}

    async def delete_groups(self, group_ids: list[str]) -> list[dict[str, Any]]:
        results = []
        for gid in group_ids:
            group = self.groups.get(gid)
            consumer = isinstance(group, ConsumerGroup)
            if group is None or (group.dead if consumer else group.state == S.DEAD):
                error = E.group_id_not_found
            elif group.members or (not consumer and group.state != S.EMPTY):
                error = E.non_empty_group
            else:
                if consumer:
                    group.dead = True
                else:
                    group.state = S.DEAD
                del self.groups[gid]
                tombstones = tuple((t, p, None) for t, p in group.offsets)
                self._apply([PersistOffsets(gid, tombstones), DeleteGroup(gid)])
                logger.info("deleted group %s", gid)
                error = E.none
            results.append({"group_id": gid, "error_code": error})
        return results
