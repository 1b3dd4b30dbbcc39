"""Consumer-group offsets and group inspection, without joining any group.

Tools and the mirror's checkpointing commit offsets the way MirrorMaker and
kafka-consumer-groups do: a "simple" commit with generation -1 and no member id, which the
coordinator accepts only while the group has no active members. Every group request goes
to the group's coordinator, found with FindCoordinator and cached until NOT_COORDINATOR.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from kio.schema.errors import ErrorCode

from .connection import BrokerConnection
from .core import TP, ClientCore
from .errors import KafkaProtocolError, check
from .metadata import BrokerInfo

log = logging.getLogger(__name__)

OFFSET_COMMIT, OFFSET_FETCH, FIND_COORDINATOR = 8, 9, 10
DESCRIBE_GROUPS, LIST_GROUPS, DELETE_GROUPS = 15, 16, 42
CONSUMER_GROUP_DESCRIBE = 69
#: OffsetCommit/OffsetFetch v10 name topics by id; names are all we need, so stop at 9.
_OFFSETS_MAX = 9
COORDINATOR_CODES = frozenset(
    int(c) for c in (ErrorCode.not_coordinator, ErrorCode.coordinator_not_available,
                     ErrorCode.coordinator_load_in_progress)
)


@dataclass(frozen=True)
class GroupListing:
    group_id: str
    protocol_type: str
    state: str | None = None  # only from ListGroups v4+


@dataclass(frozen=True)
class MemberDescription:
    member_id: str
    client_id: str
    client_host: str
    group_instance_id: str | None = None
    metadata: bytes = b""
    assignment: bytes = b""


@dataclass(frozen=True)
class GroupDescription:
    group_id: str
    state: str
    protocol_type: str
    protocol: str
    members: tuple[MemberDescription, ...] = ()
    error_code: int = 0


async def _consumer_groups(conn: BrokerConnection, names: list[str]) -> dict[str, GroupDescription]:
    resp = await conn.send(conn.build(CONSUMER_GROUP_DESCRIBE, {"group_ids": names,
                                                                "include_authorized_operations": False}))
    return {
        g.group_id: GroupDescription(
            g.group_id, g.group_state, "consumer", g.assignor_name,
            tuple(MemberDescription(m.member_id, m.client_id, m.client_host, m.instance_id, b"", b"")
                  for m in g.members))
        for g in resp.groups if int(g.error_code) == 0
    }


class GroupsMixin(ClientCore):
    def _coordinators(self) -> dict[str, BrokerInfo]:
        return self._coordinator_cache

    async def find_coordinator(self, group: str) -> BrokerInfo:
        """The broker coordinating `group` (retried while the coordinator is loading)."""

        async def once() -> BrokerInfo:
            conn = await self.any_connection()
            version = conn.version_for(FIND_COORDINATOR)
            body = conn.build(FIND_COORDINATOR, {"key": group, "key_type": 0, "coordinator_keys": [group]})
            resp = await conn.send(body)
            c = resp.coordinators[0] if version >= 4 else resp
            check(c.error_code, getattr(c, "error_message", None), context=f"FindCoordinator {group}")
            return BrokerInfo(int(c.node_id), c.host, int(c.port))

        info = await self.retrying(once, "FindCoordinator")
        self._coordinators()[group] = info
        return info

    async def _coordinator(self, group: str) -> BrokerConnection:
        info = self._coordinators().get(group) or await self.find_coordinator(group)
        return await self.connection(info.node_id, (info.host, info.port))

    def _check_group(self, group: str, code: int, what: str, message: str | None = None) -> None:
        if int(code) in COORDINATOR_CODES:
            self._coordinators().pop(group, None)
        check(code, message, context=f"{what} {group}")

    async def offset_fetch(self, group: str, partitions: list[TP] | None = None) -> dict[TP, tuple[int, str | None]]:
        """{(topic, partition): (committed offset, metadata)}; all committed partitions when
        `partitions` is None. Asked-for partitions without a commit come back as -1."""
        topics = None
        if partitions is not None:
            by_topic: dict[str, list[int]] = {}
            for t, p in partitions:
                by_topic.setdefault(t, []).append(p)
            topics = [{"name": t, "partition_indexes": ps} for t, ps in by_topic.items()]

        async def once() -> dict[TP, tuple[int, str | None]]:
            conn = await self._coordinator(group)
            version = conn.version_for(OFFSET_FETCH, _OFFSETS_MAX)
            body = conn.build(
                OFFSET_FETCH,
                {"group_id": group, "topics": topics, "require_stable": False,
                 "groups": [{"group_id": group, "topics": topics}]},
                version,
            )
            resp = await conn.send(body)
            if version >= 8:
                g = resp.groups[0]
                self._check_group(group, g.error_code, "OffsetFetch")
                result_topics = g.topics
            else:
                self._check_group(group, getattr(resp, "error_code", 0), "OffsetFetch")
                result_topics = resp.topics
            out = {}
            for t in result_topics:
                for p in t.partitions:
                    self._check_group(group, p.error_code, f"OffsetFetch {t.name}-{p.partition_index}")
                    out[(t.name, int(p.partition_index))] = (int(p.committed_offset), p.metadata)
            return out

        return await self.retrying(once, "OffsetFetch")

    async def offset_commit(
        self,
        group: str,
        offsets: dict[TP, int],
        generation_id: int = -1,
        member_id: str = "",
        metadata: str | None = "",
    ) -> None:
        """Commit offsets; with the defaults, a simple commit for a group with no members."""
        by_topic: dict[str, list[dict]] = {}
        for (t, p), off in offsets.items():
            by_topic.setdefault(t, []).append(
                {"partition_index": p, "committed_offset": off, "committed_leader_epoch": -1,
                 "committed_metadata": metadata}
            )

        async def once() -> None:
            conn = await self._coordinator(group)
            body = conn.build(
                OFFSET_COMMIT,
                {
                    "group_id": group,
                    "generation_id_or_member_epoch": generation_id,
                    "member_id": member_id,
                    "group_instance_id": None,
                    "retention_time": -1,
                    "topics": [{"name": t, "partitions": ps} for t, ps in by_topic.items()],
                },
                _OFFSETS_MAX,
            )
            resp = await conn.send(body)
            for t in resp.topics:
                for p in t.partitions:
                    self._check_group(group, p.error_code, f"OffsetCommit {t.name}-{p.partition_index}")

        await self.retrying(once, "OffsetCommit")

    async def list_groups(self) -> list[GroupListing]:
        """Every group on every broker (each broker lists only the groups it coordinates)."""
        meta = await self.metadata()

        async def on(node: int) -> list[GroupListing]:
            conn = await self.connection(node)
            resp = await conn.send(conn.build(LIST_GROUPS, {"states_filter": [], "types_filter": []}))
            check(resp.error_code, context=f"ListGroups on broker {node}")
            return [GroupListing(g.group_id, g.protocol_type, getattr(g, "group_state", None)) for g in resp.groups]

        async def once() -> list[GroupListing]:
            found = await asyncio.gather(*(on(n) for n in meta.brokers))
            return sorted({g.group_id: g for part in found for g in part}.values(), key=lambda g: g.group_id)

        return await self.retrying(once, "ListGroups")

    async def _per_coordinator(self, groups: list[str]) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        for g in groups:
            info = self._coordinators().get(g) or await self.find_coordinator(g)
            out.setdefault(info.node_id, []).append(g)
        return out

    async def describe_groups(self, groups: list[str]) -> dict[str, GroupDescription]:
        async def on(node: int, names: list[str]) -> list[GroupDescription]:
            info = self._coordinators()[names[0]]
            conn = await self.connection(node, (info.host, info.port))
            resp = await conn.send(conn.build(DESCRIBE_GROUPS, {"groups": names, "include_authorized_operations": False}))
            out = []
            for g in resp.groups:
                self._check_group(g.group_id, g.error_code, "DescribeGroups", getattr(g, "error_message", None))
                members = tuple(
                    MemberDescription(m.member_id, m.client_id, m.client_host, getattr(m, "group_instance_id", None),
                                      bytes(m.member_metadata), bytes(m.member_assignment))
                    for m in g.members
                )
                out.append(GroupDescription(g.group_id, g.group_state, g.protocol_type, g.protocol_data, members))
            dead = [d.group_id for d in out if d.state == "Dead"]
            if dead and conn.versions.supports(CONSUMER_GROUP_DESCRIBE):
                # DescribeGroups shows a KIP-848 consumer group as Dead (it is not a classic
                # group); ConsumerGroupDescribe shows its state and members.
                found = await _consumer_groups(conn, dead)
                out = [found.get(d.group_id, d) for d in out]
            return out

        async def once() -> dict[str, GroupDescription]:
            plan = await self._per_coordinator(groups)
            found = await asyncio.gather(*(on(n, gs) for n, gs in plan.items()))
            return {d.group_id: d for part in found for d in part}

        return await self.retrying(once, "DescribeGroups")

    async def delete_groups(
        self, groups: list[str], *, raise_errors: bool = True
    ) -> dict[str, KafkaProtocolError | None]:
        """Delete empty groups and their committed offsets."""

        async def on(node: int, names: list[str]) -> dict[str, KafkaProtocolError | None]:
            info = self._coordinators()[names[0]]
            conn = await self.connection(node, (info.host, info.port))
            resp = await conn.send(conn.build(DELETE_GROUPS, {"groups_names": names}))
            out: dict[str, KafkaProtocolError | None] = {}
            for r in resp.results:
                if int(r.error_code) in COORDINATOR_CODES:
                    self._check_group(r.group_id, r.error_code, "DeleteGroups")
                out[r.group_id] = (
                    None if int(r.error_code) == 0 else KafkaProtocolError(r.error_code, context=f"DeleteGroups {r.group_id}")
                )
            return out

        async def once() -> dict[str, KafkaProtocolError | None]:
            plan = await self._per_coordinator(groups)
            merged: dict[str, KafkaProtocolError | None] = {}
            for part in await asyncio.gather(*(on(n, gs) for n, gs in plan.items())):
                merged.update(part)
            return merged

        results = await self.retrying(once, "DeleteGroups")
        if raise_errors:
            for err in results.values():
                if err is not None:
                    raise err
        return results
